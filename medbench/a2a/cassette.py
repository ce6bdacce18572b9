"""An attempt's A2A traffic through its cassette (vcrpy), with the attempt's secrets left out.

a2a-sdk talks through `httpx` (not the openai SDK's `httpx2`), asynchronously; this transport
does for it what `medbench.cassettes.attempt` does for the model and the FHIR gateway: play a
recorded answer, else send, record and return the real one. Two things vary between a
recording and its replay and are left out of the recorded (and matched) copy of a request: the
JSON-RPC and message ids a client draws at random, and the attempt's MCP URL, whose token is a
capability that must not reach disk (`HIDDEN`). The agent gets the request exactly as sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx
from vcr.cassette import Cassette
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.request import Request as VcrRequest

HIDDEN = "<the attempt's MCP endpoint>"
STABLE_ID = "medbench"
_DROPPED_HEADERS = {"content-encoding", "content-length", "transfer-encoding"}


class A2ACassetteTransport(httpx.AsyncBaseTransport):
    """Plays from / records into one attempt's cassette; `hidden` strings never reach the cassette."""

    def __init__(
        self, cassette: Cassette, hidden: Sequence[str], inner: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._cassette = cassette
        self._hidden = [value for value in hidden if value]
        self._inner = inner or httpx.AsyncHTTPTransport(trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        shown = VcrRequest(request.method, str(request.url), self._stable(body), dict(request.headers))
        if self._cassette.can_play_response_for(shown):
            recorded = self._cassette.play_response(shown)
            content = recorded["body"]["string"]
            return httpx.Response(
                recorded["status"]["code"],
                headers=_headers(recorded["headers"]),
                content=content.encode("utf-8") if isinstance(content, str) else content or b"",
                request=request,
            )
        if self._cassette.write_protected and self._cassette.filter_request(shown):
            raise CannotOverwriteExistingCassetteException(cassette=self._cassette, failed_request=shown)
        response = await self._inner.handle_async_request(request)
        content = await response.aread()
        headers = [(name, value) for name, value in response.headers.items() if name.lower() not in _DROPPED_HEADERS]
        self._cassette.append(
            shown,
            {
                "status": {"code": response.status_code, "message": response.reason_phrase or ""},
                "headers": {name: [value] for name, value in headers},
                "body": {"string": self._hide(content.decode("utf-8", errors="replace"))},
            },
        )
        return httpx.Response(response.status_code, headers=headers, content=content, request=request)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def _hide(self, text: str) -> str:
        for value in self._hidden:
            text = text.replace(value, HIDDEN)
        return text

    def _stable(self, body: bytes) -> bytes:
        """The request as recorded: hidden strings replaced, random JSON-RPC and message ids fixed."""
        text = self._hide(body.decode("utf-8", errors="replace"))
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            return text.encode("utf-8")
        if isinstance(parsed, dict) and "jsonrpc" in parsed:
            parsed["id"] = STABLE_ID
            message = (parsed.get("params") or {}).get("message")
            if isinstance(message, dict) and "messageId" in message:
                message["messageId"] = STABLE_ID
            text = json.dumps(parsed, ensure_ascii=False)
        return text.encode("utf-8")


def _headers(recorded: dict[str, Any]) -> list[tuple[str, str]]:
    return [(name, values[-1] if isinstance(values, list) else values) for name, values in recorded.items()]
