"""The synthetic EHR's generator version, readable without importing the generator (or Faker).

Cache keys carry it (`medbench.ehr.cache.database_path`): checking whether a database is
already built must not cost the import of Faker's locale tables, which only a build needs."""

from __future__ import annotations

import importlib.metadata

DATA_VERSION = "2"
"""Bump whenever generated data changes."""
GENERATOR_VERSION = f"{DATA_VERSION}+faker{importlib.metadata.version('faker')}"
"""Faker's version is included because its word lists decide names and addresses (cache keys
must change with either)."""
