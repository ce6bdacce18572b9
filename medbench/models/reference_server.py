"""A local OpenAI-compatible endpoint serving the built-in models: `reference` and the baselines
`do-nothing` and `give-up` (medbench/models/baselines.py). A request that carries `tools` is
answered with `tool_calls` (medbench/models/reference_tools.py), one without in the text protocol.

The harness talks to the reference model exactly as to any hosted model (openai SDK, HTTP,
chat completions), so `--model=reference` exercises the same client, retry and accounting code
as a real run, with no key and no network. Stdlib only: a threaded HTTP server on a free
loopback port.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from medbench.models.baselines import BASELINES
from medbench.models.reference_agent import ReferenceAgentError, reference_reply
from medbench.models.reference_tools import TOOL_MODELS

MODEL_ID = "reference"
BUILTIN_MODELS: dict[str, Callable[[list[dict[str, Any]]], str]] = {MODEL_ID: reference_reply, **BASELINES}


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
            raise _RequestError(HTTPStatus.BAD_REQUEST, f"messages[{index}].content must be a string or a list of parts")
    return messages


def _tools_of(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The validated `tools` of a request (None when it carries none: the text protocol)."""
    tools = body.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list) or not all(
            isinstance(t, dict) and isinstance(t.get("function"), dict) and isinstance(t["function"].get("name"), str)
            for t in tools):
        raise _RequestError(HTTPStatus.BAD_REQUEST,
                            "'tools' must be a list of {\"type\": \"function\", \"function\": {\"name\", ...}}")
    return tools


def chat_completion(body: Any, serve_as: str | None = None) -> dict[str, Any]:
    """The OpenAI chat.completion object answering a request body (raises _RequestError).

    `serve_as` answers every requested model name with that built-in model (a standalone server
    that other harnesses and proxies call by their own model names)."""
    messages = _messages_of(body)
    name = serve_as or str(body.get("model") or MODEL_ID)
    if name not in BUILTIN_MODELS:
        raise _RequestError(HTTPStatus.NOT_FOUND, f"model {name!r} is not built in; choose one of {sorted(BUILTIN_MODELS)}",
                            "model_not_found")
    tools = _tools_of(body)
    message: dict[str, Any] = {"role": "assistant", "content": None}
    try:
        if tools is None:
            message["content"] = BUILTIN_MODELS[name](messages)
        else:
            message["tool_calls"] = _tool_calls(TOOL_MODELS[name](messages, tools), messages)
    except ReferenceAgentError as exc:
        raise _RequestError(HTTPStatus.UNPROCESSABLE_ENTITY, str(exc), "reference_agent_error") from None
    # Like a hosted endpoint, the prompt count includes the tool schemas and earlier tool calls.
    prompt_tokens = sum(rough_token_count(json.dumps(m.get("content"))) + rough_token_count(_calls_text(m))
                        for m in messages)
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


def _tool_calls(calls: list[tuple[str, dict[str, Any]]], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI tool_calls with ids that are unique in the conversation and the same in every run
    (a recording made twice is the same file)."""
    turn = 1 + sum(1 for m in messages if m.get("role") == "assistant")
    return [{"id": f"call_{turn}_{index}", "type": "function",
             "function": {"name": name, "arguments": json.dumps(arguments)}}
            for index, (name, arguments) in enumerate(calls, start=1)]


def _calls_text(message: dict[str, Any]) -> str:
    calls = message.get("tool_calls")
    return json.dumps(calls) if calls else ""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "medbench-reference/1"
    # Headers and body go out in two writes; with Nagle on, keep-alive clients wait ~40 ms per call.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a benchmark run makes thousands of calls and the harness records them itself."""

    def _send(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, error: _RequestError) -> None:
        self._send(error.status, {"error": {"message": str(error), "type": error.kind, "param": None, "code": None}})

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            models = [{"id": name, "object": "model", "created": 0, "owned_by": "medbench"} for name in BUILTIN_MODELS]
            self._send(HTTPStatus.OK, {"object": "list", "data": models})
        else:
            self._send_error(_RequestError(HTTPStatus.NOT_FOUND, f"no route GET {self.path}", "not_found_error"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._send_error(_RequestError(HTTPStatus.NOT_FOUND, f"no route POST {self.path}", "not_found_error"))
            return
        try:
            body = json.loads(raw)
        except ValueError as exc:
            self._send_error(_RequestError(HTTPStatus.BAD_REQUEST, f"request body is not valid JSON: {exc}"))
            return
        latency_s = getattr(self.server, "latency_s", 0.0)
        if latency_s:
            time.sleep(latency_s)  # a stand-in for a hosted model's think time (benchmarks of the harness)
        try:
            self._send(HTTPStatus.OK, chat_completion(body, getattr(self.server, "serve_as", None)))
        except _RequestError as error:
            self._send_error(error)


class ReferenceServer:
    """The reference model behind `POST /v1/chat/completions` on a free loopback port.

    Use as a context manager (or `start()`/`stop()`); `.base_url` is what `--base-url` or the
    openai SDK takes, e.g. `http://127.0.0.1:54321/v1`. No API key is checked.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, serve_as: str | None = None,
                 latency_s: float = 0.0) -> None:
        if serve_as is not None and serve_as not in BUILTIN_MODELS:
            raise ValueError(f"unknown built-in model {serve_as!r}; choose one of {sorted(BUILTIN_MODELS)}")
        self._host = host
        self._port = port
        self.serve_as = serve_as
        self.latency_s = latency_s
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("ReferenceServer is not started; use `with ReferenceServer() as server:` or call start()")
        return f"http://{self._host}:{self._httpd.server_port}/v1"

    def start(self) -> ReferenceServer:
        if self._httpd is None:
            self._httpd = ThreadingHTTPServer((self._host, self._port), _Handler)
            self._httpd.daemon_threads = True
            self._httpd.serve_as = self.serve_as  # type: ignore[attr-defined]
            self._httpd.latency_s = self.latency_s  # type: ignore[attr-defined]
            self._thread = threading.Thread(target=self._httpd.serve_forever, name="medbench-reference", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            if self._thread is not None:
                self._thread.join()
            self._httpd = None
            self._thread = None

    def __enter__(self) -> ReferenceServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
