"""Our own task set: 10 categories x 30 tasks drawn from the synthetic EHR, deterministic per seed.

Wording, prompt and function catalog are data in medbench/data/; this module only draws patients so
that every grader branch is exercised (found / not found, each deficiency tier, stale / recent,
...) in the proportions set in medbench/data/task_templates.json, and fills the templates. A fresh
`task_seed` redraws patients and phrasings, to test memorisation of the public set.
"""

from __future__ import annotations

import json
import random
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from medbench.clock import NOW, NOW_ISO
from medbench.package_data import data_file
from medbench.tasks.task import CATEGORIES, Presentation, Task, TaskSet

if TYPE_CHECKING:
    from medbench.ehr.population import PatientRecord, Population

GENERATOR_VERSION = "1"
TASKS_PER_CATEGORY = 30
NOT_FOUND = "Patient not found"
TEMPLATES_FILE = data_file("task_templates.json")
PROMPT_FILE = data_file("prompt_generated.txt")
FUNCTIONS_FILE = data_file("functions_generated.json")

DAY_AGO = NOW - timedelta(hours=24)
YEAR_AGO = datetime(2022, 11, 13, 10, 15, tzinfo=timezone.utc)
NEAR_MISS_ATTEMPTS = 200

Reading = tuple[datetime, float]


def generated_presentation() -> Presentation:
    """Our prompt template and function catalog (medbench/data/), shown with generated tasks."""
    prompt = PROMPT_FILE.read_text(encoding="utf-8").removesuffix("\n")
    functions = json.loads(FUNCTIONS_FILE.read_text(encoding="utf-8"))
    return Presentation(prompt_template=prompt, functions=functions, flavour="generated")


def load_templates() -> dict[str, Any]:
    templates: dict[str, Any] = json.loads(TEMPLATES_FILE.read_text(encoding="utf-8"))
    return templates


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def latest(readings: Sequence[Reading]) -> Reading | None:
    """The reading with the greatest time; ties keep the first in storage order, as graders do."""
    best: Reading | None = None
    for moment, value in readings:
        if best is None or _aware(moment) > _aware(best[0]):
            best = (moment, value)
    return best


def within_24h(readings: Sequence[Reading]) -> list[Reading]:
    """Readings taken at or after now - 24 h (no upper bound, as the graders read it)."""
    return [(moment, value) for moment, value in readings if _aware(moment) >= DAY_AGO]


def magnesium_branch(readings: Sequence[Reading]) -> str:
    """task5 branch from the latest MG within 24 h: missing / normal / mild / moderate / severe."""
    newest = latest(within_24h(readings))
    if newest is None:
        return "missing"
    value = newest[1]
    if value > 1.9:
        return "normal"
    if value >= 1.5:
        return "mild"
    if value >= 1:
        return "moderate"
    return "severe"


def potassium_branch(readings: Sequence[Reading]) -> str:
    newest = latest(readings)
    if newest is None:
        return "missing"
    return "normal" if newest[1] >= 3.5 else "low"


def a1c_branch(readings: Sequence[Reading]) -> str:
    newest = latest(readings)
    if newest is None:
        return "missing"
    return "stale" if _aware(newest[0]) < YEAR_AGO else "recent"


def _labs(patient: PatientRecord, code: str) -> list[Reading]:
    return list(patient.labs.get(code, []))


LAB_BRANCHES: dict[int, Callable[[PatientRecord], str]] = {
    4: lambda p: "present" if within_24h(_labs(p, "MG")) else "none_within_24h",
    5: lambda p: magnesium_branch(_labs(p, "MG")),
    6: lambda p: "within_24h" if within_24h(_labs(p, "GLU")) else "none",
    7: lambda p: "any" if _labs(p, "GLU") else "none",
    9: lambda p: potassium_branch(_labs(p, "K")),
    10: lambda p: a1c_branch(_labs(p, "A1C")),
}


def full_name(given: Sequence[str], family: str) -> str:
    return " ".join([*given, family])


def _folded(text: str) -> str:
    """Case- and accent-insensitive form, as FHIR servers compare string search parameters."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)).casefold()


def _prefix_match(a: str, b: str) -> bool:
    """FHIR string search matches by prefix, so either name may hide the other."""
    a, b = _folded(a), _folded(b)
    return a.startswith(b) or b.startswith(a)


def _collides(given: Sequence[str], family: str, birth_date: date, patient: PatientRecord) -> bool:
    """Would a name + birthdate search for (given, family, birth_date) also find `patient`?"""
    if patient.birth_date != birth_date:
        return False
    return _prefix_match(family, patient.family) or any(
        _prefix_match(mine, theirs) for mine in given for theirs in patient.given
    )


def _nameable(patient: PatientRecord) -> bool:
    """The task1 convention needs a one-token family name and no ',' or '(' in the name."""
    name = full_name(patient.given, patient.family)
    return bool(patient.given) and len(patient.family.split()) == 1 and not any(c in name for c in ",(")


def task1_found_pool(population: Population) -> list[PatientRecord]:
    """Data patients whom a name + birthdate search finds alone."""
    return [
        p
        for p in population.patients
        if p.has_data
        and _nameable(p)
        and not any(
            _collides(p.given, p.family, p.birth_date, other) for other in population.patients if other is not p
        )
    ]


def _near_miss(rng: random.Random, population: Population, base: PatientRecord) -> tuple[list[str], str, date]:
    """A name + birthdate close to `base`'s that no patient has (task1 not found)."""
    others = [p for p in population.patients if p is not base and _nameable(p)]
    for _ in range(NEAR_MISS_ATTEMPTS):
        given, family, birth_date = list(base.given), base.family, base.birth_date
        kind = rng.choice(("birth_date", "family", "given"))
        if kind == "birth_date":
            birth_date = birth_date + timedelta(days=rng.choice((-366, -3, -2, -1, 1, 2, 3, 365)))
        elif kind == "family":
            family = rng.choice(others).family
        else:
            given = [rng.choice(others).given[0], *given[1:]]
        if not any(_collides(given, family, birth_date, p) for p in population.patients):
            return given, family, birth_date
    raise ValueError(f"could not draw a task1 near-miss of patient {base.mrn} that no patient has")


def _draw(rng: random.Random, pool: Sequence[PatientRecord], count: int) -> list[PatientRecord]:
    """`count` patients without repeats while the pool lasts, then in further shuffled rounds."""
    picks: list[PatientRecord] = []
    while len(picks) < count:
        picks.extend(rng.sample(list(pool), min(len(pool), count - len(picks))))
    return picks


def _rebalance(quotas: dict[str, int], pool_sizes: dict[str, int], category: int) -> dict[str, int]:
    """Move the quota of a branch no patient falls in to the largest remaining branch."""
    filled = {branch: n for branch, n in quotas.items() if pool_sizes.get(branch, 0) > 0}
    if not filled:
        raise ValueError(f"task{category}: no patient with data falls in any branch {sorted(quotas)}")
    target = max(filled, key=lambda branch: filled[branch])
    filled[target] += sum(n for branch, n in quotas.items() if branch not in filled)
    return filled


def _slots(
    category: int, rng: random.Random, population: Population, quotas: dict[str, int]
) -> list[tuple[str, PatientRecord]]:
    """(branch, patient) per task in id order; for task1 not_found the patient is the near-miss base."""
    data_patients = sorted((p for p in population.patients if p.has_data), key=lambda p: p.mrn)
    if category == 1:
        nameable = [p for p in data_patients if _nameable(p)]
        pools: dict[str, list[PatientRecord]] = {"found": task1_found_pool(population), "not_found": nameable}
    elif category in LAB_BRANCHES:
        pools = {branch: [] for branch in quotas}
        for patient in data_patients:
            pools.setdefault(LAB_BRANCHES[category](patient), []).append(patient)
    else:
        pools = {"any": data_patients}
    quotas = _rebalance(quotas, {branch: len(pool) for branch, pool in pools.items()}, category)
    slots: list[tuple[str, PatientRecord]] = []
    for branch, count in quotas.items():
        slots.extend((branch, patient) for patient in _draw(rng, pools[branch], count))
    rng.shuffle(slots)
    return slots


def _referral_note(rng: random.Random, notes: dict[str, Any]) -> str:
    note: str = notes["format"].format(
        **rng.choice(notes["cases"]), recommendation=rng.choice(notes["recommendations"])
    )
    return note


def _blood_pressure(rng: random.Random, ranges: dict[str, list[int]]) -> str:
    systolic = rng.randint(*ranges["systolic"])
    diastolic = rng.randint(ranges["diastolic"][0], min(ranges["diastolic"][1], systolic - 25))
    return f"{systolic}/{diastolic} mmHg"


def _task1(
    task_id: str,
    branch: str,
    patient: PatientRecord,
    rng: random.Random,
    population: Population,
    wording: dict[str, Any],
) -> Task:
    instruction = rng.choice(wording["instructions"])
    context = rng.choice(wording["contexts"]).format(now=NOW_ISO)
    if branch == "not_found":
        given, family, birth_date = _near_miss(rng, population, patient)
        mrn, sol = None, [NOT_FOUND]
    else:
        given, family, birth_date = list(patient.given), patient.family, patient.birth_date
        mrn, sol = patient.mrn, [patient.mrn]
    instruction = instruction.format(name=full_name(given, family), dob=birth_date.isoformat())
    return Task(task_id, 1, instruction, context, eval_MRN=mrn, sol=sol)


def _task(category: int, task_id: str, patient: PatientRecord, rng: random.Random, templates: dict[str, Any]) -> Task:
    """Tasks 2-10: the patient's MRN, plus the quoted value that task3 / task8 grade against."""
    wording = templates["categories"][str(category)]
    instruction = rng.choice(wording["instructions"])
    context = rng.choice(wording["contexts"]).format(now=NOW_ISO)
    fills: dict[str, str] = {"mrn": patient.mrn}
    sol: list[Any] | None = None
    if category == 3:
        fills["bp"] = _blood_pressure(rng, templates["blood_pressure"])
        sol = [fills["bp"]]
    if category == 8:
        fills["note"] = _referral_note(rng, templates["referral_notes"])
        sol = [fills["note"]]
    return Task(task_id, category, instruction.format(**fills), context, eval_MRN=patient.mrn, sol=sol)


def generate_task_set(task_seed: int, population: Population) -> TaskSet:
    """30 tasks per category, ids task1_1..task10_30, the same for the same seed, population and version."""
    templates = load_templates()
    tasks: list[Task] = []
    for category in CATEGORIES:
        rng = random.Random(f"medbench-tasks:{GENERATOR_VERSION}:{task_seed}:{category}")
        quotas = dict(templates["branches"][str(category)])
        if sum(quotas.values()) != TASKS_PER_CATEGORY:
            raise ValueError(f"{TEMPLATES_FILE}: branches of task{category} must add up to {TASKS_PER_CATEGORY}")
        for number, (branch, patient) in enumerate(_slots(category, rng, population, quotas), start=1):
            task_id = f"task{category}_{number}"
            if category == 1:
                tasks.append(_task1(task_id, branch, patient, rng, population, templates["categories"]["1"]))
            else:
                tasks.append(_task(category, task_id, patient, rng, templates))
    shown = generated_presentation()
    return TaskSet(
        name=f"generated-v{GENERATOR_VERSION}-seed{task_seed}",
        tasks=tuple(tasks),
        prompt_template=shown.prompt_template,
        functions=shown.functions,
        flavour="generated",
    )


def branch_of(task: Task, population: Population) -> str:
    """Which grader branch a task exercises, recomputed from the population (for reports and tests)."""
    if task.category == 1:
        return "not_found" if task.sol == [NOT_FOUND] else "found"
    if task.category not in LAB_BRANCHES:
        return "any"
    patient = next(p for p in population.patients if p.mrn == task.eval_MRN)
    return LAB_BRANCHES[task.category](patient)


def branch_counts(task_set: TaskSet, population: Population) -> dict[int, dict[str, int]]:
    """Tasks per branch per category, e.g. {5: {"missing": 10, "normal": 8, ...}, ...}."""
    counts: dict[int, Counter[str]] = {category: Counter() for category in CATEGORIES}
    for task in task_set.tasks:
        counts[task.category][branch_of(task, population)] += 1
    return {category: dict(counter) for category, counter in counts.items()}
