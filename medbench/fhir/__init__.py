"""Embedded FHIR R4 server answering MedAgentBench interactions the way HAPI FHIR JPA does."""

from medbench.fhir.server import FhirServer, embedded_server
from medbench.fhir.store import FhirStore, build_database

__all__ = ["FhirServer", "FhirStore", "build_database", "embedded_server"]
