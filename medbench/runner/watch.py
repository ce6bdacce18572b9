"""Stop early when the model endpoint refuses the session (wrong key, no access, unknown model).

Such a refusal does not heal by itself: spending it on 300 tasks only fills runs.jsonl with
errors. When the first attempts of a session all end with the same refusal, the session stops
with that message once; a single success (or any other outcome) disarms the watch for good.
"""

from __future__ import annotations

import re
from typing import Any

from medbench.outcomes import ERROR

# The model client's wording of a non-retryable HTTP refusal (medbench.models.client).
REFUSAL = re.compile(r"model call failed: HTTP (401|403|404)\b")
FIRST_ATTEMPTS = 3


class EndpointWatch:
    def __init__(self, first_attempts: int = FIRST_ATTEMPTS) -> None:
        self.first_attempts = first_attempts
        self.refusals: list[str] = []
        self.armed = True

    def observe(self, record: dict[str, Any]) -> str | None:
        """Feed one finished attempt; returns the message to stop with, once, when it is time."""
        if not self.armed:
            return None
        error = str(record.get("error") or "")
        match = REFUSAL.search(error) if record.get("status") == ERROR else None
        if match is None or (self.refusals and _gist(error) != _gist(self.refusals[0])):
            self.armed = False
            return None
        self.refusals.append(error)
        if len(self.refusals) < self.first_attempts:
            return None
        self.armed = False
        return (
            f"the model endpoint refused the first {self.first_attempts} attempts with the same error, "
            f"stopping the session: {error[:400]}"
        )


def _gist(error: str) -> str:
    """The refusal without request ids, which differ between otherwise equal errors."""
    return re.sub(r"(req|chatcmpl)[-_][A-Za-z0-9]+", "", error)
