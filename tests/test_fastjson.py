"""Hot-path JSON parsing gives exactly what the standard library gives, refusals included."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from medbench.fastjson import loads
from medbench.fhir.search import parse_query
from medbench.fhir.store import FhirStore, _dumps_base


@pytest.mark.parametrize(
    "text",
    [
        '{"a": [1, 2.5, -0.0, 1e-05, 123456789012345678], "b": "Núñez \\u00e9 \\"q\\"", "c": null, "d": true}',
        '{"a": 1, "a": 2}',
        "[]",
        '"text"',
    ],
)
def test_parses_like_the_standard_library(text: str) -> None:
    assert loads(text) == json.loads(text)
    assert loads(text.encode()) == json.loads(text)


def test_nan_and_infinity_parse_as_the_standard_library_parses_them() -> None:
    parsed = loads("[NaN, Infinity, -Infinity]")
    assert math.isnan(parsed[0]) and parsed[1:] == [math.inf, -math.inf]


@pytest.mark.parametrize("text", ["", "{", '{"a": }', "[1,]", '"\\ud800" x'])
def test_refuses_what_the_standard_library_refuses_with_its_message(text: str) -> None:
    with pytest.raises(ValueError) as ours:
        loads(text)
    with pytest.raises(ValueError) as theirs:
        json.loads(text)
    assert str(ours.value) == str(theirs.value)


def test_the_store_reads_posted_integers_beyond_64_bits_exactly(sample_db: Path) -> None:
    """orjson would read such an integer as a float: POSTed resources are parsed by `json`, and
    the base data cannot hold one (its writer refuses it)."""
    big = 123456789012345678901234567890
    store = FhirStore(sample_db)
    try:
        stored = store.create({"resourceType": "Observation", "status": "final", "valueInteger": big}, "ns")
        assert store.read("Observation", stored["id"], "ns")["valueInteger"] == big
        (seq,) = store.search(parse_query("Observation", [("_id", stored["id"])]), "ns")
        assert store.fetch([seq], "ns")[0]["valueInteger"] == big
    finally:
        store.close()
    with pytest.raises(TypeError):
        _dumps_base({"valueInteger": big})
