"""Fake demographics (names, birth dates, phones, addresses) for one patient slot.

Faker (en_US) is reseeded per patient so every patient is independent of the others; its
version is part of GENERATOR_VERSION because its word lists decide the names."""

from __future__ import annotations

import random
import string
import threading
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from faker import Faker
from faker.providers.person.en_US import Provider as PersonProvider

from medbench.clock import NOW
from medbench.ehr.catalog import load_catalog

SOURCE_ALPHABET = string.ascii_letters + string.digits
_FAKER_LOCK = threading.Lock()


@dataclass(frozen=True)
class Demographics:
    mrn: str
    given: tuple[str, ...]
    family: str
    gender: str
    birth_date: date
    phone: str
    address_line: str
    city: str
    state: str
    postal_code: str
    race: dict[str, Any]
    ethnicity: dict[str, Any]

    def renamed(self, given: tuple[str, ...], family: str, birth_date: date) -> Demographics:
        """Take a name and birth date a task states, guessing gender from the first given name."""
        return replace(self, given=given, family=family, birth_date=birth_date, gender=gender_of(given[0], self.gender))


@lru_cache(maxsize=1)
def _faker() -> Faker:
    return Faker("en_US")


def source_tag(rng: random.Random) -> str:
    """HAPI's meta.source: '#' and 16 random characters (one per load batch)."""
    return "#" + "".join(rng.choices(SOURCE_ALPHABET, k=16))


def gender_of(given: str, fallback: str) -> str:
    """'female'/'male' when Faker's name lists are unambiguous about `given`, else `fallback`."""
    female = given in PersonProvider.first_names_female
    male = given in PersonProvider.first_names_male
    if female and not male:
        return "female"
    if male and not female:
        return "male"
    return fallback


def _weighted(rng: random.Random, options: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    picked = rng.choices(options, weights=[o["weight"] for o in options])[0]
    return {"code": picked["code"], "display": picked["display"]}


def make_demographics(rng: random.Random, mrn: str, min_age: int, max_age: int) -> Demographics:
    """Draw a complete, plausible identity; `rng` also seeds Faker, so the result depends on it alone.
    The shared Faker is locked while seeded, so concurrent builds in threads stay deterministic."""
    faker_seed = rng.getrandbits(64)
    gender = rng.choice(("female", "male"))
    age_days = rng.randint(min_age * 365, max_age * 365)
    catalog = load_catalog()
    with _FAKER_LOCK:
        fake = _faker()
        fake.seed_instance(faker_seed)
        given = fake.first_name_female() if gender == "female" else fake.first_name_male()
        family = fake.last_name()
        phone = fake.numerify("%##-%##-####")
        address_line, city = fake.street_address(), fake.city()
        state, postal_code = fake.state_abbr(include_territories=False), fake.postcode()
    return Demographics(
        mrn=mrn,
        given=(given,),
        family=family,
        gender=gender,
        birth_date=NOW.date() - timedelta(days=age_days),
        phone=phone,
        address_line=address_line,
        city=city,
        state=state,
        postal_code=postal_code,
        race=_weighted(rng, catalog.race),
        ethnicity=_weighted(rng, catalog.ethnicity),
    )
