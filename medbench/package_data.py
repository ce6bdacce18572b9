"""The one door to the data files medbench ships (prompts, catalogs, situations, model metadata,
viewer assets): read through `importlib.resources`, so an installed wheel finds them exactly as a
checkout does. Nothing else builds a path to them from `__file__`.
"""

from __future__ import annotations

import json
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any


def data_file(name: str) -> Traversable:
    """A shipped data file by its name under `medbench/data/` (e.g. "viewer/page.html")."""
    return files("medbench").joinpath("data", *name.split("/"))


def read_text(name: str) -> str:
    return data_file(name).read_text(encoding="utf-8")


def read_json(name: str) -> Any:
    return json.loads(read_text(name))
