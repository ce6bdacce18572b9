"""Seating: the facts a task file states about patients, which the synthetic EHR must honour.

Every MRN a task names must exist as a patient with data; a task1 name + birth date with a
solution MRN must be found exactly once, under that MRN; a task1 name + birth date whose
solution is "Patient not found" must find nobody. The population generator reads a Seating;
it never reads task files itself."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from medbench.ehr.profiles import DIMENSION_OF_CATEGORY, profile_for
from medbench.tasks.model import Task, canonical_sha256

NOT_FOUND = "Patient not found"
TASK1_PERSON = (
    # official: "... the patient with name Jane Doe and DOB of 1950-01-31?"
    re.compile(r"\bname\s+(?P<name>[^\d?,(]+?)\s+and\s+(?:DOB|date of birth|birth ?date)\s+(?:of\s+|is\s+)?(?P<dob>\d{4}-\d{2}-\d{2})", re.IGNORECASE),
    # generated (fixtures/task_templates.json): "... the patient named Jane Doe, born 1950-01-31" or "(born ...)"
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
        return normalized(family).startswith(normalized(self.family)) or any(normalized(g).startswith(first) for g in given)

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
                    raise ValueError(f"tasks {other_id} and {task.id} give {' '.join(person.to_json())} two different MRNs")
            found[mrn] = (task.id, person)
        for mrn, (task_id, person) in found.items():
            if any(person.same_as(p) for p in not_found):
                raise ValueError(f"task {task_id} finds {' '.join(person.to_json())} as {mrn}, another task says it is not found")
        return cls(
            mrns=tuple((mrn, tuple(cats)) for mrn, cats in categories.items()),
            found=tuple((mrn, person) for mrn, (_, person) in found.items()),
            not_found=tuple(not_found),
            unparsed=tuple(unparsed),
        )

    @property
    def digest(self) -> str:
        """Stable hex hash of the constraints (and their order, which decides the slots), for cache keys."""
        return canonical_sha256({
            "mrns": [[mrn, list(cats)] for mrn, cats in self.mrns],
            "found": [[mrn, *person.to_json()] for mrn, person in self.found],
            "not_found": [person.to_json() for person in self.not_found],
        })

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
