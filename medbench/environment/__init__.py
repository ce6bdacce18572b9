"""The environment: the FHIR server a run talks to, as the harness reaches it and as the model sees it.

One object travels from setup to the agent loop and the graders (as inspect_ai passes one state):
the real base URL, the display base the prompt shows, a fingerprint for the result files, and the
per-attempt write namespaces of the embedded server. It is plain data, so an xdist controller can
start the environment once and hand it to every worker.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import requests

from medbench.environment.gateway import DEFAULT_DISPLAY_BASE, FhirGateway, GatewayResponse

# The embedded server keeps POSTed writes apart per value of this header, and drops one namespace
# on `DELETE <real base>$medbench-namespace` (medbench.fhir.namespaces).
from medbench.fhir.namespaces import NAMESPACE_HEADER
from medbench.fhir.namespaces import RESET_OPERATION as DROP_NAMESPACE_PATH


@dataclass(frozen=True)
class Environment:
    """Where the FHIR data lives for this session; `kind` is embedded, external or replay."""

    real_base: str
    display_base: str = DEFAULT_DISPLAY_BASE
    fingerprint: str = "unknown"
    kind: str = "embedded"
    seating: str | None = None

    @property
    def namespaced(self) -> bool:
        """Only the embedded server keeps writes apart per attempt (and can drop them)."""
        return self.kind == "embedded"

    def gateway(self, namespace: str | None = None, adapter: Any = None) -> FhirGateway:
        """A gateway for one attempt: its writes namespace, and optionally a cassette adapter."""
        headers = {NAMESPACE_HEADER: namespace} if namespace and self.namespaced else None
        return FhirGateway(self.real_base, self.display_base, headers=headers, adapter=adapter)

    def drop_namespace(self, namespace: str) -> None:
        """Forget what one attempt POSTed (execute mode), so the server does not grow with the run."""
        if not self.namespaced:
            return
        try:
            requests.delete(self.real_base + DROP_NAMESPACE_PATH, headers={NAMESPACE_HEADER: namespace}, timeout=30)
        except requests.RequestException:
            pass  # the writes stay isolated under their namespace; only memory is not reclaimed

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Environment:
        return cls(**data)


def attempt_namespace(session: str, test_id: str) -> str:
    """A short token unique to one attempt of one session (the server accepts [A-Za-z0-9_.-]{1,64})."""
    return hashlib.sha256(f"{session}/{test_id}".encode()).hexdigest()[:32]


__all__ = [
    "DEFAULT_DISPLAY_BASE",
    "NAMESPACE_HEADER",
    "Environment",
    "FhirGateway",
    "GatewayResponse",
    "attempt_namespace",
]
