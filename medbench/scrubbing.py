"""One scrubber for every secret a session holds: the API key and every `--extra-header` value.

Endpoints echo credentials back (`401 Incorrect API key provided: Bearer sk-...`), and that
text travels into error messages, results, transcripts, cassettes and pytest reports. Every
writer passes what it writes through one ``Scrubber``, so a secret never reaches disk, whichever
path the text took.

Which values are secrets: each configured value, and the forms it is echoed in (JSON-escaped,
percent-encoded, `Bearer <key>`, the token of a `Scheme token` header value), when that form
is at least ``MIN_SECRET_CHARS`` long. Shorter values are not scrubbed at all: `--api-key=x`
(usual for local servers) is no secret, and replacing every `x` would mangle the text it
appears in (`e***ceeds the available conte***t size`); replacing it only as a whole word would
still rewrite FHIR bodies (`"versionId": "1"`). `Bearer x` is long enough and is scrubbed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

MASK = "***"
# Real API keys are 20+ characters; anything under 8 could be an ordinary word or number.
MIN_SECRET_CHARS = 8


class Scrubber:
    """Replaces every known secret (in all its echoed forms) by ``MASK``; longest forms first."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for value in values:
            forms.update(_forms(value))
        kept = sorted((form for form in forms if len(form) >= MIN_SECRET_CHARS), key=lambda form: (-len(form), form))
        self.forms: tuple[str, ...] = tuple(kept)
        self._text = re.compile("|".join(map(re.escape, kept))) if kept else None
        encoded = [re.escape(form.encode("utf-8", "surrogatepass")) for form in kept]
        self._raw = re.compile(b"|".join(encoded)) if kept else None

    @classmethod
    def of(cls, api_key: str | None = None, extra_headers: Mapping[str, str] | None = None) -> Scrubber:
        """The secrets of a session: the key (also as `Bearer <key>`) and every extra-header value."""
        values = [value for value in (extra_headers or {}).values()]
        if api_key:
            values += [api_key, f"Bearer {api_key}"]
        return cls(values)

    def __bool__(self) -> bool:
        return bool(self.forms)

    def text(self, text: str) -> str:
        """``text`` with every secret masked."""
        return self._text.sub(MASK, text) if self._text is not None else text

    def raw(self, data: bytes) -> bytes:
        """Raw bytes (a response body in any encoding that keeps ASCII) with every secret masked."""
        return self._raw.sub(MASK.encode(), data) if self._raw is not None else data

    def data(self, value: Any) -> Any:
        """A copy of JSON-like data (dicts, lists, strings) with every string and key masked."""
        if self._text is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.data(key): self.data(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.data(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.data(item) for item in value)
        return value


NO_SECRETS = Scrubber()


def _forms(value: str) -> set[str]:
    """A value and the ways an endpoint may echo it: JSON-escaped, percent-encoded, token alone."""
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], quote(value, safe="")}
    scheme, _, token = value.partition(" ")
    if token and scheme.isalpha():
        forms.add(token.strip())  # `Basic dXNlcjpwYXNz`, `Bearer sk-...`: the credential itself
    return {form for form in forms if form}
