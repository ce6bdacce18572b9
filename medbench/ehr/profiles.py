"""Branch profiles: which answer each task-relevant lab gives for a data patient.

Every task category branches on the magnesium, potassium, glucose or HbA1c history. Profiles
are assigned by patient slot with interleaved cycles so that any run of a few dozen slots
covers every branch several times, and the first occurrences of a tier pin the boundary
cases (exactly 1.9, 1.5, 1.0, 3.5 mg/dL-or-mmol/L, exactly 24 h, exactly one year)."""

from __future__ import annotations

from dataclasses import dataclass

MG_TIERS = ("missing", "normal", "mild", "moderate", "severe")
"""Latest magnesium within 24 h: none, > 1.9, 1.5-1.9, 1-<1.5, < 1 (task4/task5)."""
K_TIERS = ("missing", "low", "normal")
"""Latest potassium at any time: none, < 3.5, >= 3.5 (task9)."""
GLU_TIERS = ("within_24h", "older_only", "none")
"""Glucose: several values within 24 h, only older values, never measured (task6/task7)."""
A1C_TIERS = ("missing", "stale", "recent")
"""Latest HbA1c: none, older than one year, within one year (task10)."""

DIMENSION_OF_CATEGORY = {4: "mg", 5: "mg", 6: "glu", 7: "glu", 9: "k", 10: "a1c"}
"""Which lab decides the branch of each task category (the others do not branch on labs)."""


@dataclass(frozen=True)
class Profile:
    """Tier per lab, plus how many earlier slots had the same tier (0 and 1 pin boundary cases)."""

    mg: str
    k: str
    glu: str
    a1c: str
    mg_occurrence: int
    k_occurrence: int
    glu_occurrence: int
    a1c_occurrence: int

    def tier(self, dimension: str) -> str:
        return str(getattr(self, dimension))

    @property
    def currently_admitted(self) -> bool:
        """Recent magnesium or glucose values only make sense for an inpatient."""
        return self.mg != "missing" or self.glu == "within_24h"

    @property
    def diabetic(self) -> bool:
        return self.a1c != "missing"


def profile_for(slot: int) -> Profile:
    """The profile of data-patient slot `slot`; cycles of 5, 3, 9 and 6 slots interleave the tiers."""
    return Profile(
        mg=MG_TIERS[slot % 5],
        k=K_TIERS[slot % 3],
        glu=GLU_TIERS[(slot // 3) % 3],
        a1c=A1C_TIERS[(slot // 2) % 3],
        mg_occurrence=slot // 5,
        k_occurrence=slot // 3,
        glu_occurrence=(slot // 9) * 3 + slot % 3,
        a1c_occurrence=(slot // 6) * 2 + slot % 2,
    )
