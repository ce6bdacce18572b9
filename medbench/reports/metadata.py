"""Model metadata and task-category labels from a user-editable TOML file (data, not code).

Lookup order for the file: an explicit path, then `<results>/models.toml`, then the project's
`medbench/data/models.toml`. A model without an entry is shown by its folder name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from medbench.package_data import data_file
from medbench.reports.load import ReportError

PROJECT_MODELS_FILE = Path(str(data_file("models.toml")))

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMBT])\b", re.IGNORECASE)
_SCALE_TO_BILLIONS = {"K": 1e-6, "M": 1e-3, "B": 1.0, "T": 1e3}


class MetadataError(ReportError):
    """The models file cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class ModelInfo:
    """How one model is shown and priced in reports."""

    key: str
    display_name: str
    provider: str | None = None
    parameters: str | None = None
    endpoint: str | None = None
    input_usd_per_mtok: float | None = None
    output_usd_per_mtok: float | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalog:
    """All entries of a models file plus the task-category labels."""

    models: dict[str, ModelInfo] = field(default_factory=dict)
    task_labels: dict[str, str] = field(default_factory=dict)
    source: Path | None = None
    # MedAgentBench v2's category labels (`[tasks_v2]`), used for runs of a v2 task set.
    v2_task_labels: dict[str, str] = field(default_factory=dict)

    def info_for(self, slug: str, model_name: str) -> ModelInfo:
        """The entry whose key or alias equals the folder slug or the recorded model name."""
        for name in (slug, model_name):
            if name in self.models:
                return self.models[name]
        for info in self.models.values():
            if slug in info.aliases or model_name in info.aliases:
                return info
        return ModelInfo(key=slug, display_name=slug)

    def task_label(self, category: str) -> str:
        return self.task_labels.get(category, "")


def parse_parameters(text: str | None) -> float | None:
    """Parameter count in billions from labels like `4B`, `1.5T`, `400B (MoE)`."""
    if not text:
        return None
    match = _SIZE.match(str(text))
    if not match:
        return None
    return float(match.group(1)) * _SCALE_TO_BILLIONS[match.group(2).upper()]


def _price(entry: dict[str, Any], key: str, where: str) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise MetadataError(f"{where}: {key} must be a non-negative number (US dollars per million tokens)")
    return float(value)


def parse_catalog(data: dict[str, Any], source: Path | None = None) -> Catalog:
    """Validated Catalog from the parsed TOML document."""
    models: dict[str, ModelInfo] = {}
    for key, entry in (data.get("models") or {}).items():
        where = f"{source or 'models file'} [models.{key!r}]"
        if not isinstance(entry, dict):
            raise MetadataError(f"{where}: expected a table")
        aliases = entry.get("aliases", [])
        if not isinstance(aliases, list):
            raise MetadataError(f"{where}: aliases must be a list of strings")
        parameters = entry.get("parameters")
        models[key] = ModelInfo(
            key=key,
            display_name=str(entry.get("display_name") or key),
            provider=entry.get("provider"),
            parameters=None if parameters is None else str(parameters),
            endpoint=entry.get("endpoint"),
            input_usd_per_mtok=_price(entry, "input_usd_per_mtok", where),
            output_usd_per_mtok=_price(entry, "output_usd_per_mtok", where),
            aliases=tuple(str(a) for a in aliases),
        )
    labels = {str(k): str(v) for k, v in (data.get("tasks") or {}).items()}
    v2_labels = {str(k): str(v) for k, v in (data.get("tasks_v2") or {}).items()}
    return Catalog(models=models, task_labels=labels, source=source, v2_task_labels=v2_labels)


def load_catalog(models_file: Path | None = None, results_dir: Path | None = None) -> Catalog:
    """Catalog from the first models file found (see module docstring); empty if none.

    A user's file overrides the project's entries one by one: a model it names replaces that
    entry, every other shipped entry (and the task-category labels it does not set) stays.
    """
    if models_file is not None:
        path = Path(models_file)
        if not path.is_file():
            raise MetadataError(f"models file {path} not found; pass an existing TOML file or leave --models-file out")
    else:
        candidates = [Path(results_dir) / "models.toml"] if results_dir is not None else []
        candidates.append(PROJECT_MODELS_FILE)
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            return Catalog()
    catalog = parse_catalog(_read_toml(path), source=path)
    if path != PROJECT_MODELS_FILE and PROJECT_MODELS_FILE.is_file():
        shipped = parse_catalog(_read_toml(PROJECT_MODELS_FILE))
        catalog = Catalog(
            models={**shipped.models, **catalog.models},
            task_labels={**shipped.task_labels, **catalog.task_labels},
            source=path,
            v2_task_labels={**shipped.v2_task_labels, **catalog.v2_task_labels},
        )
    return catalog


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise MetadataError(f"{path}: not valid TOML ({exc})") from None
