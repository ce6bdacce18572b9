"""What a v2 grader knows the attempt did: its accepted writes and whether it stayed silent.

Upstream reads both from the wrapper's history (GRADING.md 0.5, 0.6): an accepted POST is an
agent item containing "POST" followed by one containing "POST request accepted"; "strict"
silence is no agent item containing "POST" at all (prose included), "lenient" silence is no
accepted POST. The three grader modes read this differently, in one place each:

- official: exactly upstream (a "POST" item that is the last one crashes the grader: incorrect);
- corrected: only real create calls the loop answered as accepted count, silence means no
  accepted write, and an unanswered last POST is simply not accepted;
- state: the writes are the resources the attempt's namespace holds (read from the EHR).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from medbench.grading.checks import Incorrect
from medbench.grading.fhir_reads import Gateway, ReadError, fetch_json
from medbench.grading.transcript import Post, TranscriptError, Turn, official_accepted_posts
from medbench.grading.v2.clock import CUTOFF_QUERY

ACCEPTED = "POST request accepted"
CREATED_TYPES = ("ServiceRequest", "MedicationRequest", "Observation")


class Evidence(Protocol):
    def posts(self) -> list[Post]:
        """The accepted writes, in order (raises Incorrect where upstream's reading crashes)."""
        ...

    def strict_silence(self) -> str | None:
        """None when the attempt counts as silent under the strict test, else why not."""
        ...

    def lenient_silence(self) -> str | None:
        """None when no write was accepted, else which."""
        ...


@dataclass(frozen=True)
class OfficialEvidence:
    history: Sequence[Turn]

    def posts(self) -> list[Post]:
        try:
            return official_accepted_posts(self.history)
        except TranscriptError as error:
            raise Incorrect(str(error)) from None

    def strict_silence(self) -> str | None:
        for number, turn in enumerate(self.history, start=1):
            if turn["role"] == "agent" and "POST" in turn["content"]:
                line = next(line for line in turn["content"].split("\n") if "POST" in line).strip()[:80]
                return f"history item {number} contains 'POST' ({line!r}); the official strict test wants none"
        return None

    def lenient_silence(self) -> str | None:
        return _named(self.posts())


@dataclass(frozen=True)
class CorrectedEvidence:
    history: Sequence[Turn]

    def posts(self) -> list[Post]:
        posts = []
        for i, turn in enumerate(self.history[:-1]):
            content = turn["content"]
            if turn["role"] != "agent" or not content.startswith("POST ") or self.history[i + 1]["content"] != ACCEPTED:
                continue
            first, _, body = content.partition("\n")
            try:
                posts.append(Post(first[5:].strip(), json.loads(body), i))
            except (ValueError, RecursionError):
                continue
        return posts

    def strict_silence(self) -> str | None:
        return self.lenient_silence()

    def lenient_silence(self) -> str | None:
        return _named(self.posts())


@dataclass
class StateEvidence:
    """The writes the EHR holds in the attempt's namespace: resources of the patient updated after the cut-off."""

    gateway: Gateway
    api_base: str
    mrn: str
    _posts: list[Post] | None = None

    def posts(self) -> list[Post]:
        if self._posts is None:
            posts = []
            for resource_type in CREATED_TYPES:
                url = (
                    f"{self.api_base}{resource_type}?patient={self.mrn}"
                    f"&_lastUpdated=gt{CUTOFF_QUERY}&_count=5000&_format=json"
                )
                try:
                    bundle = fetch_json(self.gateway, url)
                except ReadError as error:
                    raise Incorrect(f"could not read the attempt's writes: {error}") from None
                for entry in bundle.get("entry") or []:
                    resource: Any = entry.get("resource") or {}
                    posts.append(Post(self.api_base + resource_type, resource, -1))
            self._posts = posts
        return self._posts

    def strict_silence(self) -> str | None:
        return self.lenient_silence()

    def lenient_silence(self) -> str | None:
        return _named(self.posts())


def _named(posts: list[Post]) -> str | None:
    if not posts:
        return None
    names = ", ".join(_label(post) for post in posts[:4])
    return f"{len(posts)} accepted write(s) where none is due: {names}"


def _label(post: Post) -> str:
    payload = post.payload if isinstance(post.payload, dict) else {}
    kind = payload.get("resourceType") or post.url.rsplit("/", 1)[-1]
    rid = payload.get("id")
    return f"{kind}/{rid}" if rid else str(kind)
