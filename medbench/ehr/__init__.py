"""The synthetic EHR: a seeded, MedAgentBench-shaped patient population (see docs/DESIGN.md)."""

from medbench.ehr.population import (
    GENERATOR_VERSION,
    PatientRecord,
    Population,
    build_population,
)
from medbench.ehr.scales import SCALES
from medbench.ehr.seating import Seating

__all__ = ["GENERATOR_VERSION", "SCALES", "PatientRecord", "Population", "Seating", "build_population"]
