"""Write namespaces: the request header that keeps concurrent attempts' POSTs apart.

Attempts that run side by side in execute mode share one server; each sends its requests with
`X-Medbench-Namespace: <token>` and sees the base data plus its own writes only. A request
without the header uses the default namespace `""` (one shared writes layer, as before
namespaces existed). `DELETE <real base>$medbench-namespace` with the header drops that
namespace's writes, for a server running in another process.
"""

from __future__ import annotations

import re

from medbench.fhir.errors import FhirError

NAMESPACE_HEADER = "X-Medbench-Namespace"
# The operation that drops one namespace: `DELETE /fhir/$medbench-namespace` (answered 204).
RESET_OPERATION = "$medbench-namespace"
DEFAULT_NAMESPACE = ""
_TOKEN = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def parse_namespace(header_value: str | None) -> str:
    """The namespace a request selects; 400 for a header that is present but not a token
    (`[A-Za-z0-9_.-]{1,64}`)."""
    if header_value is None:
        return DEFAULT_NAMESPACE
    if not _TOKEN.fullmatch(header_value):
        raise FhirError(
            400, f"Invalid {NAMESPACE_HEADER} header {header_value[:80]!r}: use 1-64 characters from A-Z a-z 0-9 _ . -"
        )
    return header_value
