"""Starting the environment: the embedded server over the cached synthetic EHR, or a checked external URL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from medbench.environment import Environment
from medbench.fhir import FhirServer
from medbench.settings import Settings, SetupError
from medbench.tasks.task import TaskSet, canonical_sha256

# Everything `fhirVersion` may say for an R4 server (4.0.0 and 4.0.1 are R4; 4.3.0 is R4B).
R4_VERSIONS = ("4.0.0", "4.0.1", "4.3.0")


@contextmanager
def open_environment(
    settings: Settings, task_set: TaskSet, progress: Callable[[int], None] | None = None, population: Any = None
) -> Iterator[Environment]:
    """The embedded server (seated for the task set: by situation for official tasks; cached database)
    or the checked external URL."""
    if settings.fhir_url:
        yield external_environment(settings)
        return
    if task_set.benchmark == "v2":
        with _open_v2_environment(settings, task_set, progress) as environment:
            yield environment
        return
    from medbench.ehr.cache import ensure_database
    from medbench.ehr.seating import embedded_seating, seating_label

    seating = embedded_seating(settings.tasks, task_set.tasks)
    database = ensure_database(
        settings.ehr_seed,
        settings.ehr_scale,
        seating,
        progress=progress,
        population=population if seating is None else None,
    )
    with FhirServer(database) as server:
        yield Environment(
            server.base_url,
            settings.fhir_display_url,
            f"embedded:{database.name}",
            "embedded",
            seating=seating_label(seating),
        )


def embedded_server(
    seed: int = 0, scale: str = "small", seating: Any = None, cache_dir: Path | str | None = None
) -> FhirServer:
    """A (not yet started) server over the cached synthetic EHR for this seed, scale and seating.

    It lives here, above both: the EHR cache builds with the FHIR store, and the FHIR server
    knows nothing of the EHR."""
    from medbench.ehr.cache import ensure_database

    return FhirServer(ensure_database(seed=seed, scale=scale, seating=seating, cache_dir=cache_dir))


@contextmanager
def _open_v2_environment(
    settings: Settings, task_set: TaskSet, progress: Callable[[int], None] | None
) -> Iterator[Environment]:
    """The embedded server over the v2 EHR: the background population plus the v2 cohort, seated by
    situation for the official v2 tasks, unseated for generated-v2."""
    from medbench.ehr.v2.population import ensure_v2_database
    from medbench.ehr.v2.seating import v2_embedded_seating, v2_seating_label

    seating = v2_embedded_seating(settings.tasks, task_set.tasks)
    database = ensure_v2_database(settings.ehr_seed, settings.ehr_scale, seating, progress=progress)
    with FhirServer(database) as server:
        yield Environment(
            server.base_url,
            settings.fhir_display_url,
            f"embedded:{database.name}",
            "embedded",
            seating=v2_seating_label(seating),
        )


def embedded_v2_server(
    seed: int = 0, scale: str = "small", seating: Any = None, cache_dir: Path | str | None = None
) -> FhirServer:
    """A (not yet started) server over the cached v2 EHR for this seed, scale and v2 seating."""
    from medbench.ehr.v2.population import ensure_v2_database

    return FhirServer(ensure_v2_database(seed=seed, scale=scale, seating=seating, cache_dir=cache_dir))


def external_environment(settings: Settings) -> Environment:
    """Check that `--fhir-url` answers a CapabilityStatement of an R4 server before any task runs."""
    url = settings.fhir_url or ""
    if settings.post_mode == "execute":
        raise SetupError(
            "--post-mode=execute needs the embedded server (writes are kept per attempt there); "
            "an external --fhir-url cannot isolate or reset them"
        )
    try:
        response = requests.get(url + "metadata", headers={"Accept": "application/fhir+json"}, timeout=30)
        response.raise_for_status()
        statement = response.json()
    except (requests.RequestException, ValueError) as error:
        raise SetupError(
            f"FHIR server at {url} is not reachable ({error}); start it (e.g. the MedAgentBench "
            "Docker image on port 8080) or drop --fhir-url to use the embedded server"
        ) from None
    if not isinstance(statement, dict) or statement.get("resourceType") != "CapabilityStatement":
        raise SetupError(
            f"{url}metadata did not answer a FHIR CapabilityStatement; is --fhir-url the FHIR "
            "base (e.g. http://localhost:8080/fhir/)?"
        )
    version = str(statement.get("fhirVersion") or "")
    if version not in R4_VERSIONS:
        raise SetupError(
            f"FHIR server at {url} speaks FHIR {version or 'of no stated version'}; "
            "MedAgentBench needs an R4 server (fhirVersion 4.0.x)"
        )
    software = statement.get("software", {})
    described = {"software": software, "fhirVersion": version}
    return Environment(url, settings.fhir_display_url, f"external:{canonical_sha256(described)[:16]}", "external")
