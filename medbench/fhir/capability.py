"""The CapabilityStatement (`GET /fhir/metadata`), generated from the search-parameter registry
so that what the server advertises is exactly what it implements."""

from __future__ import annotations

from typing import Any

from medbench import __version__
from medbench.fhir.dates import now_instant
from medbench.fhir.searchparams import REGISTRY


def capability_statement(base: str) -> dict[str, Any]:
    """Server capabilities: every resource type with read/search/create and its search params."""
    resources = []
    for resource_type, params in REGISTRY.items():
        search_params = [{"name": "_id", "type": "token"}]
        search_params += [{"name": p.name, "type": p.kind} for p in params.values()]
        resources.append(
            {
                "type": resource_type,
                "interaction": [{"code": "read"}, {"code": "search-type"}, {"code": "create"}],
                "searchParam": search_params,
            }
        )
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": now_instant(),
        "publisher": "medbench",
        "kind": "instance",
        "software": {"name": "medbench embedded FHIR server", "version": __version__},
        "implementation": {"description": "medbench embedded FHIR R4 server (synthetic EHR)", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{"mode": "server", "resource": resources}],
    }
