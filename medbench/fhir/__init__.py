"""Embedded FHIR R4 server answering MedAgentBench interactions the way HAPI FHIR JPA does."""

from medbench.fhir.namespaces import NAMESPACE_HEADER
from medbench.fhir.server import FhirServer
from medbench.fhir.store import FhirStore, build_database

__all__ = ["NAMESPACE_HEADER", "FhirServer", "FhirStore", "build_database"]
