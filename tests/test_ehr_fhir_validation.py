"""Every kind of resource the synthetic EHR stores validates against the FHIR R4B models."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from medbench.ehr import build_population


def _kind(resource: dict[str, Any]) -> str:
    if resource["resourceType"] != "Observation":
        return resource["resourceType"]
    category = resource["category"][0]["coding"][0]["code"]
    return f"Observation/{category}/{'string' if 'valueString' in resource else 'quantity'}"


def _samples(per_kind: int = 5) -> dict[str, list[dict[str, Any]]]:
    samples: dict[str, list[dict[str, Any]]] = {}
    for resource in build_population(seed=3, scale="small").iter_resources():
        bucket = samples.setdefault(_kind(resource), [])
        if len(bucket) < per_kind:
            bucket.append(resource)
    return samples


SAMPLES = _samples()


def test_samples_cover_every_resource_kind() -> None:
    assert set(SAMPLES) == {
        "Patient",
        "Observation/laboratory/quantity",
        "Observation/vital-signs/quantity",
        "Observation/vital-signs/string",
        "Condition",
        "MedicationRequest",
        "Procedure",
    }


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_resource_validates_with_r4b_models(kind: str) -> None:
    for resource in SAMPLES[kind]:
        model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        assert model.id == resource["id"]
