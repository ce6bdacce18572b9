"""Seating: the facts a task file states about patients, which the synthetic EHR must honour.

Every MRN a task names must exist as a patient with data; a task1 name + birth date with a
solution MRN must be found exactly once, under that MRN; a task1 name + birth date whose
solution is "Patient not found" must find nobody. The population generator reads a Seating;
it never reads task files itself.

Official tasks are seated by situation (`Seating.for_tasks`): on top of those constraints each
patient's chart carries the decisive values the official data has (medbench/ehr/situations.py),
so every task meets its real grading branch. Any other task file keeps the plain seating."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date

from medbench.ehr.profiles import DIMENSION_OF_CATEGORY, profile_for
from medbench.ehr.situations import (
    NOT_FOUND,
    SITUATION_SEATING_VERSION,
    Chart,
    charts_of,
    near_miss_birth_date,
    official_situations,
)
from medbench.tasks.task import Task, canonical_sha256

TASK1_PERSON = (
    # official: "... the patient with name Jane Doe and DOB of 1950-01-31?"
    re.compile(
        r"\bname\s+(?P<name>[^\d?,(]+?)\s+and\s+(?:DOB|date of birth|birth ?date)\s+(?:of\s+|is\s+)?(?P<dob>\d{4}-\d{2}-\d{2})",
        re.IGNORECASE,
    ),
    # generated (medbench/data/task_templates.json): "... the patient named Jane Doe, born 1950-01-31" or "(born ...)"
    re.compile(r"\bnamed\s+(?P<name>[^\d?,(]+?)\s*[,(]\s*born\s+(?:on\s+)?(?P<dob>\d{4}-\d{2}-\d{2})", re.IGNORECASE),
)


def normalized(text: str) -> str:
    """Case- and accent-insensitive form, as HAPI compares string search parameters."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


@dataclass(frozen=True)
class NamedPerson:
    """A name and birth date as a task1 instruction states them (family = last word)."""

    given: tuple[str, ...]
    family: str
    birth_date: date

    @classmethod
    def parse(cls, instruction: str) -> NamedPerson | None:
        match = next((m for m in (p.search(instruction) for p in TASK1_PERSON) if m), None)
        if match is None:
            return None
        words = match["name"].split()
        if len(words) < 2:
            return None
        return cls(tuple(words[:-1]), words[-1], date.fromisoformat(match["dob"]))

    def same_as(self, other: NamedPerson) -> bool:
        return (
            self.birth_date == other.birth_date
            and normalized(self.family) == normalized(other.family)
            and normalized(" ".join(self.given)) == normalized(" ".join(other.given))
        )

    def could_be_found_as(self, given: Iterable[str], family: str, birth_date: date) -> bool:
        """Whether a search for this person by birth date plus given or family name (HAPI
        starts-with matching) could return a patient with these demographics. Deliberately
        broad: a patient that fails it cannot answer any reasonable name + DOB search."""
        if birth_date != self.birth_date:
            return False
        first = normalized(self.given[0])
        return normalized(family).startswith(normalized(self.family)) or any(
            normalized(g).startswith(first) for g in given
        )

    def to_json(self) -> list[str]:
        return [" ".join(self.given), self.family, self.birth_date.isoformat()]


@dataclass(frozen=True)
class Seating:
    mrns: tuple[tuple[str, tuple[int, ...]], ...]
    """Every MRN the tasks name, in first-appearance order, with the task categories naming it."""
    found: tuple[tuple[str, NamedPerson], ...]
    """(MRN, person) pairs task1 must find exactly once."""
    not_found: tuple[NamedPerson, ...]
    """People task1 must not find."""
    unparsed: tuple[str, ...] = ()
    """Ids of task1 tasks whose name and birth date could not be read (no constraint applied)."""
    charts: tuple[tuple[str, Chart], ...] = ()
    """Seating by situation only: the decisive chart facts of each seated MRN."""
    near_misses: tuple[NamedPerson, ...] = ()
    """Seating by situation only: people who must exist (a "not found" lookup's real namesake)."""

    @classmethod
    def for_tasks(cls, tasks: Sequence[Task]) -> Seating:
        """Seating by situation when every task is an official one, else the plain seating."""
        situations = official_situations(tasks)
        plain = cls.from_tasks(tasks)
        if situations is None:
            return plain
        near_misses = []
        for task, situation in zip(tasks, situations, strict=True):
            person = NamedPerson.parse(task.instruction) if task.category == 1 else None
            born = near_miss_birth_date(situation)
            if person is not None and born is not None:
                near_misses.append(NamedPerson(person.given, person.family, born))
        return replace(plain, charts=tuple(charts_of(situations).items()), near_misses=tuple(near_misses))

    @property
    def kind(self) -> str:
        """`situations` (official tasks in their real situations) or `tasks` (plain seating)."""
        return "situations" if self.charts else "tasks"

    def chart_of(self, mrn: str) -> Chart | None:
        return dict(self.charts).get(mrn)

    @classmethod
    def from_tasks(cls, tasks: Iterable[Task]) -> Seating:
        """Collect the constraints; contradictory tasks (one MRN, two people; one person both
        found and not found) raise ValueError naming the tasks."""
        categories: dict[str, list[int]] = {}
        found: dict[str, tuple[str, NamedPerson]] = {}
        not_found: list[NamedPerson] = []
        unparsed: list[str] = []

        def name_mrn(mrn: str, category: int) -> None:
            seen = categories.setdefault(mrn, [])
            if category not in seen:
                seen.append(category)

        for task in tasks:
            if task.eval_MRN:
                name_mrn(task.eval_MRN, task.category)
            if task.category != 1:
                continue
            person = NamedPerson.parse(task.instruction)
            if person is None or not task.sol:
                unparsed.append(task.id)
                continue
            if task.sol[0] == NOT_FOUND:
                if not any(person.same_as(p) for p in not_found):
                    not_found.append(person)
                continue
            mrn = str(task.sol[0])
            name_mrn(mrn, 1)
            if mrn in found:
                if not found[mrn][1].same_as(person):
                    raise ValueError(f"tasks {found[mrn][0]} and {task.id} name MRN {mrn} as two different people")
                continue
            for other_id, other in found.values():
                if other.same_as(person):
                    raise ValueError(
                        f"tasks {other_id} and {task.id} give {' '.join(person.to_json())} two different MRNs"
                    )
            found[mrn] = (task.id, person)
        for mrn, (task_id, person) in found.items():
            if any(person.same_as(p) for p in not_found):
                raise ValueError(
                    f"task {task_id} finds {' '.join(person.to_json())} as {mrn}, another task says it is not found"
                )
        return cls(
            mrns=tuple((mrn, tuple(cats)) for mrn, cats in categories.items()),
            found=tuple((mrn, person) for mrn, (_, person) in found.items()),
            not_found=tuple(not_found),
            unparsed=tuple(unparsed),
        )

    @property
    def digest(self) -> str:
        """Stable hex hash of the constraints (and their order, which decides the slots), for cache keys."""
        constraints: dict[str, object] = {
            "mrns": [[mrn, list(cats)] for mrn, cats in self.mrns],
            "found": [[mrn, *person.to_json()] for mrn, person in self.found],
            "not_found": [person.to_json() for person in self.not_found],
        }
        if self.charts:
            constraints["situations"] = {
                "version": SITUATION_SEATING_VERSION,
                "charts": [[mrn, chart.to_json()] for mrn, chart in self.charts],
                "near_misses": [person.to_json() for person in self.near_misses],
            }
        return canonical_sha256(constraints)

    def person_of(self, mrn: str) -> NamedPerson | None:
        return dict(self.found).get(mrn)

    def assign_slots(self, free_slots: Sequence[int], placed: Collection[str] = ()) -> dict[int, str]:
        """Map data-patient slots to the seated MRNs not already `placed`, spreading each
        category's MRNs over the branch tiers of the lab that category branches on (so official
        tasks meet varied branches). MRNs of lab-dependent categories go first; ties go to the
        lowest slot."""
        pending = [(mrn, cats) for mrn, cats in self.mrns if mrn not in placed]
        if len(pending) > len(free_slots):
            raise ValueError(f"{len(pending)} seated MRNs do not fit in {len(free_slots)} free data-patient slots")
        ordered = sorted(pending, key=lambda item: not any(c in DIMENSION_OF_CATEGORY for c in item[1]))
        profiles = {slot: profile_for(slot) for slot in free_slots}
        usage: Counter[tuple[int, str]] = Counter()
        free = list(free_slots)
        assignment: dict[int, str] = {}
        for mrn, cats in ordered:
            dims = [(c, DIMENSION_OF_CATEGORY[c]) for c in cats if c in DIMENSION_OF_CATEGORY]
            best = min(free, key=lambda s: (sum(usage[(c, profiles[s].tier(d))] for c, d in dims), s))
            free.remove(best)
            assignment[best] = mrn
            for c, d in dims:
                usage[(c, profiles[best].tier(d))] += 1
        return assignment


def embedded_seating(tasks_spec: str, tasks: Sequence[Task]) -> Seating | None:
    """The seating the embedded server uses for a task set: none for the generated set (its tasks
    were drawn from the unseated population, seating would move their patients), by situation for
    official tasks, plain for any other task file."""
    return None if tasks_spec == "generated" else Seating.for_tasks(tasks)


def seating_label(seating: Seating | None) -> str:
    """What run summaries record as `environment.seating`: none, tasks or situations."""
    return "none" if seating is None else seating.kind
