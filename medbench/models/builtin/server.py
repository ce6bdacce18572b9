"""A local OpenAI-compatible endpoint serving the built-in models: `reference` and the baselines
`do-nothing` and `give-up` (medbench/models/builtin/baselines.py). A request that carries `tools` is
answered with `tool_calls` (medbench/models/builtin/reference_tools.py), one without in the text protocol.

The harness talks to the reference model exactly as to any hosted model (openai SDK, HTTP,
chat completions), so `--model=reference` exercises the same client, retry and accounting code
as a real run, with no key and no network. The endpoint is a small WSGI app served by waitress
on a free loopback port (`medbench.serving`: read timeouts, a body limit and a connection
bound, as for the embedded FHIR server); every refusal is an OpenAI-style error object.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus
from types import TracebackType
from typing import Any

from medbench.agent.v2_tools import is_v2_toolset
from medbench.models.builtin.adversaries import ADVERSARIES
from medbench.models.builtin.baselines import BASELINES
from medbench.models.builtin.reference_agent import ReferenceAgentError, reference_reply
from medbench.models.builtin.reference_tools import TOOL_MODELS
from medbench.models.builtin.reference_v2 import V2_TOOL_MODELS
from medbench.serving import BackgroundServer, ServerLimits

log = logging.getLogger(__name__)

MODEL_ID = "reference"
# Conversations carry whole FHIR bundles, so request bodies are far larger than a FHIR POST's.
REFERENCE_LIMITS = ServerLimits(max_body_bytes=64 * 1024 * 1024, connection_limit=512, threads=16)


BUILTIN_MODELS: dict[str, Callable[[list[dict[str, Any]]], str]] = {
    MODEL_ID: reference_reply,
    **BASELINES,
    **ADVERSARIES,
}


def rough_token_count(text: str) -> int:
    """About four characters per token: usage numbers only need to be plausible, not exact."""
    return max(1, len(text) // 4) if text else 0


class _RequestError(Exception):
    def __init__(self, status: HTTPStatus, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


def _messages_of(body: Any) -> list[dict[str, Any]]:
    """The validated `messages` list of a chat-completions request body."""
    if not isinstance(body, dict):
        raise _RequestError(HTTPStatus.BAD_REQUEST, "request body must be a JSON object")
    if body.get("stream"):
        raise _RequestError(HTTPStatus.BAD_REQUEST, "stream=true is not supported by the reference model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _RequestError(HTTPStatus.BAD_REQUEST, "'messages' must be a non-empty list")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise _RequestError(HTTPStatus.BAD_REQUEST, f"messages[{index}] must be an object with a string 'role'")
        content = message.get("content")
        if content is None and message["role"] == "assistant" and message.get("tool_calls"):
            continue  # an assistant turn that only calls tools
        if not isinstance(content, (str, list)):
            raise _RequestError(
                HTTPStatus.BAD_REQUEST, f"messages[{index}].content must be a string or a list of parts"
            )
    return messages


def _tools_of(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The validated `tools` of a request (None when it carries none: the text protocol)."""
    tools = body.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list) or not all(
        isinstance(t, dict) and isinstance(t.get("function"), dict) and isinstance(t["function"].get("name"), str)
        for t in tools
    ):
        raise _RequestError(
            HTTPStatus.BAD_REQUEST, '\'tools\' must be a list of {"type": "function", "function": {"name", ...}}'
        )
    return tools


def chat_completion(body: Any, serve_as: str | None = None) -> dict[str, Any]:
    """The OpenAI chat.completion object answering a request body (raises _RequestError).

    `serve_as` answers every requested model name with that built-in model (a standalone server
    that other harnesses and proxies call by their own model names)."""
    messages = _messages_of(body)
    name = serve_as or str(body.get("model") or MODEL_ID)
    if name not in BUILTIN_MODELS:
        raise _RequestError(
            HTTPStatus.NOT_FOUND,
            f"model {name!r} is not built in; choose one of {sorted(BUILTIN_MODELS)}",
            "model_not_found",
        )
    tools = _tools_of(body)
    message: dict[str, Any] = {"role": "assistant", "content": None}
    try:
        if tools is None:
            message["content"] = BUILTIN_MODELS[name](messages)
        else:
            models = V2_TOOL_MODELS if is_v2_toolset(tools) else TOOL_MODELS
            if name not in models:
                raise _RequestError(
                    HTTPStatus.NOT_FOUND, f"model {name!r} does not call these tools", "model_not_found"
                )
            message["tool_calls"] = _tool_calls(models[name](messages, tools), messages)
    except ReferenceAgentError as exc:
        raise _RequestError(HTTPStatus.UNPROCESSABLE_ENTITY, str(exc), "reference_agent_error") from None
    # Like a hosted endpoint, the prompt count includes the tool schemas and earlier tool calls.
    prompt_tokens = sum(
        rough_token_count(json.dumps(m.get("content"))) + rough_token_count(_calls_text(m)) for m in messages
    )
    prompt_tokens += rough_token_count(json.dumps(tools)) if tools else 0
    completion_tokens = rough_token_count(message["content"] or "") + rough_token_count(_calls_text(message))
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": name,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _error_payload(status: HTTPStatus, message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _tool_calls(calls: list[tuple[str, dict[str, Any]]], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI tool_calls with ids that are unique in the conversation and the same in every run
    (a recording made twice is the same file)."""
    turn = 1 + sum(1 for m in messages if m.get("role") == "assistant")
    return [
        {
            "id": f"call_{turn}_{index}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)},
        }
        for index, (name, arguments) in enumerate(calls, start=1)
    ]


def _calls_text(message: dict[str, Any]) -> str:
    calls = message.get("tool_calls")
    return json.dumps(calls) if calls else ""


def _answer(
    method: str, path: str, raw: bytes, serve_as: str | None = None, latency_s: float = 0.0
) -> tuple[HTTPStatus, dict[str, Any]]:
    """(status, JSON payload) for one request; never raises."""
    route = path.split("?", 1)[0].rstrip("/")
    try:
        if method == "GET" and route in ("/v1/models", "/models"):
            models = [{"id": name, "object": "model", "created": 0, "owned_by": "medbench"} for name in BUILTIN_MODELS]
            return HTTPStatus.OK, {"object": "list", "data": models}
        if method != "POST" or route not in ("/v1/chat/completions", "/chat/completions"):
            raise _RequestError(HTTPStatus.NOT_FOUND, f"no route {method} {path[:200]}", "not_found_error")
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, too deep, too many digits
            raise _RequestError(HTTPStatus.BAD_REQUEST, f"request body is not valid JSON: {str(exc)[:200]}") from None
        if latency_s:
            time.sleep(latency_s)  # a stand-in for a hosted model's think time (benchmarks of the harness)
        return HTTPStatus.OK, chat_completion(body, serve_as)
    except _RequestError as error:
        return error.status, _error_payload(error.status, str(error), error.kind)
    except Exception as exc:  # a bug in a built-in model: still an answer, never a dropped connection
        log.exception("internal error answering %s %s", method, path)
        return HTTPStatus.INTERNAL_SERVER_ERROR, _error_payload(
            HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {exc!r}"[:500], "server_error"
        )


def _app(
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    serve_as: str | None = None,
    latency_s: float = 0.0,
    on_answer: Callable[[], None] | None = None,
) -> Iterable[bytes]:
    method = environ["REQUEST_METHOD"]
    raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)) if method == "POST" else b""
    status, payload = _answer(method, environ.get("PATH_INFO", "/"), raw, serve_as, latency_s)
    if on_answer is not None and method == "POST" and status == HTTPStatus.OK:
        on_answer()
    # ensure_ascii: a lone surrogate the model echoed back is escaped, never an encoding error.
    data = json.dumps(payload).encode("ascii")
    start_response(
        f"{status.value} {status.phrase}", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


def _render_error(code: int, reason: str, detail: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """Waitress's own refusals (unparsable request, body or headers too large) as OpenAI errors."""
    body = json.dumps(_error_payload(HTTPStatus(code), f"{reason}: {detail.strip()}", "invalid_request_error")).encode(
        "ascii"
    )
    return f"{code} {reason}", [("Content-Type", "application/json")], body


class ReferenceServer:
    """The reference model behind `POST /v1/chat/completions` on a free loopback port.

    Use as a context manager (or `start()`/`stop()`); `.base_url` is what `--base-url` or the
    openai SDK takes, e.g. `http://127.0.0.1:54321/v1`. No API key is checked.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: ServerLimits | None = None,
        serve_as: str | None = None,
        latency_s: float = 0.0,
        on_answer: Callable[[], None] | None = None,
    ) -> None:
        """`on_answer` is called after each chat completion is computed (serve --stop-after counts them)."""
        if serve_as is not None and serve_as not in BUILTIN_MODELS:
            raise ValueError(f"unknown built-in model {serve_as!r}; choose one of {sorted(BUILTIN_MODELS)}")
        self._host = host
        app = functools.partial(_app, serve_as=serve_as, latency_s=latency_s, on_answer=on_answer)
        self._http = BackgroundServer(
            app, _render_error, host, port, limits or REFERENCE_LIMITS, ident="medbench-reference"
        )

    @property
    def base_url(self) -> str:
        if not self._http.running:
            raise RuntimeError(
                "ReferenceServer is not started; use `with ReferenceServer() as server:` or call start()"
            )
        return f"http://{self._host}:{self._http.port}/v1"

    def start(self) -> ReferenceServer:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> ReferenceServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
