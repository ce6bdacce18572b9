"""Deterministic replay of whole benchmark runs with VCR cassettes (pytest-recording / vcrpy).

A cassette holds one task attempt's traffic: the model endpoint (chat completions) and the FHIR
server (the agent's GETs and the grader's GETs), so a replay needs neither. Decisions that keep
replay deterministic and safe:

- requests match on method, path, query and parsed JSON body, never on host or port (embedded
  servers get a new port each run; the model only ever sees the logical FHIR base URL), and
  never on response content, so bundle ids and lastUpdated stamps do not matter;
- only an allow-list of headers is written, so credentials, `--extra-header` values, cookies
  and account ids never reach disk; secret-looking query parameters are dropped too; the
  session's secrets are masked in every recorded URL and body (an endpoint may echo them);
- responses the model client retries (408, 409, 429, 5xx) are not recorded, so a recorded 429
  cannot be replayed in place of its retried 200; other 4xx (a FHIR 404, a context-limit 400)
  are part of the conversation and are kept.

A folder of cassettes carries `manifest.json`: the run identity (task set hash, modes) it was
recorded with, so a replay with other settings is refused instead of silently mismatching.
This module is plain logic; the pytest wiring lives in `medbench.plugin.recording` and per-attempt cassettes in `medbench.cassettes.attempt`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import threading
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

from medbench.models.client import RETRYABLE_STATUSES
from medbench.scrubbing import NO_SECRETS, Scrubber

# Named after the file suffix: pytest-recording derives the cassette suffix from the serializer
# name (and deletes `<name>.<serializer>` on --record-mode=rewrite), so this gives `<task_id>.json`.
SERIALIZER_NAME = "json"
CASSETTE_SUFFIX = ".json"
BODY_MATCHER_NAME = "json_body"
MANIFEST_NAME = "manifest.json"
# Files next to the cassettes that are not cassettes: the manifest, and the recorded run's
# summary and verdicts that scripts/check_replay.py compares a replay with.
NOT_CASSETTES = frozenset({MANIFEST_NAME, "summary.json", "verdicts.json"})
MANIFEST_FORMAT = 1
# What the model client retries (plus 5xx): a recorded one would be replayed instead of the retry.
UNRECORDED_STATUSES = RETRYABLE_STATUSES

KEPT_REQUEST_HEADERS = frozenset({"content-type", "accept"})
KEPT_RESPONSE_HEADERS = frozenset({"content-type", "location"})
SECRET_QUERY_PARAMETERS = ("key", "api_key", "api-key", "access_token", "token")
# Request texts longer than this are stored as a digest (the FHIR bundles a conversation repeats).
LONG_TEXT_CHARS = 20_000
LONG_TEXT_HEAD = 160
# A response body differing from an earlier one in at most this many lines is stored as a patch.
MAX_CHANGED_LINES = 8


class ReplayError(Exception):
    """Cassettes cannot serve this session; the message names the fix."""


def cassette_dir(root: Path, model_slug: str, run_name_slug: str | None = None) -> Path:
    """`cassettes/<model-slug>/[<run-name>/]`: one folder per model, like the results folder."""
    folder = root / model_slug
    return folder / run_name_slug if run_name_slug else folder


def has_cassettes(folder: Path) -> bool:
    """True when the folder holds at least one cassette (the manifest and summaries do not count)."""
    return folder.is_dir() and any(p.name not in NOT_CASSETTES for p in folder.glob(f"*{CASSETTE_SUFFIX}"))


def choose_record_mode(requested: str | None, disabled: bool, folder: Path) -> str | None:
    """The VCR record mode of a session, or None for a live run without cassettes.

    An explicit `--record-mode` wins; otherwise existing cassettes mean replay (`none`), so a
    session with recordings never reaches the network by accident, and no cassettes mean live.
    """
    if disabled:
        return None
    if requested is not None:
        return requested
    return "none" if has_cassettes(folder) else None


def vcr_config(scrubber: Scrubber = NO_SECRETS) -> dict[str, Any]:
    """Keyword arguments for `VCR.use_cassette`; `record_mode` deliberately absent (see PYTEST_NOTES).

    ``scrubber`` masks the session's secrets (API key, extra-header values) wherever they occur
    in a recorded request or response: an endpoint may echo them in a kept 4xx body.
    """
    return {
        "serializer": SERIALIZER_NAME,
        "match_on": ("method", "path", "query", BODY_MATCHER_NAME),
        "filter_query_parameters": SECRET_QUERY_PARAMETERS,
        "before_record_request": functools.partial(safe_request, scrubber=scrubber),
        "before_record_response": functools.partial(safe_response, scrubber=scrubber),
        "decode_compressed_response": True,
    }


def safe_request(request: Any, scrubber: Scrubber = NO_SECRETS) -> Any:
    """What of a request may be written (vcrpy applies this to a copy, when recording and when matching)."""
    request = keep_safe_request_headers(request)
    if scrubber:
        request.uri = scrubber.text(request.uri)
        body = request.body
        if isinstance(body, (bytes, bytearray)):
            request.body = scrubber.raw(bytes(body))
        elif isinstance(body, str):
            request.body = scrubber.text(body)
    return request


def safe_response(response: dict[str, Any], scrubber: Scrubber = NO_SECRETS) -> dict[str, Any] | None:
    """What of a response may be written: replayable statuses, safe headers, bodies without secrets."""
    kept = keep_replayable_response(response)
    if kept is None or not scrubber:
        return kept
    body = kept.get("body", {}).get("string")
    if isinstance(body, (bytes, bytearray)):
        kept["body"]["string"] = scrubber.raw(bytes(body))
    elif isinstance(body, str):
        kept["body"]["string"] = scrubber.text(body)
    return kept


def register(vcr: Any) -> None:
    """Teach a VCR instance our serializer and body matcher (called from `pytest_recording_configure`)."""
    vcr.register_serializer(SERIALIZER_NAME, ReviewableJsonSerializer)
    vcr.register_matcher(BODY_MATCHER_NAME, match_json_body)


def keep_safe_request_headers(request: Any) -> Any:
    """Allow-list, not deny-list: an unknown header (a custom auth scheme) is dropped by default."""
    for name in list(request.headers):
        if name.lower() not in KEPT_REQUEST_HEADERS:
            del request.headers[name]
    return request


def keep_replayable_response(response: dict[str, Any]) -> dict[str, Any] | None:
    """Drop retried statuses; keep only content-type and location (no cookies, org or project ids)."""
    code = response["status"]["code"]
    if code in UNRECORDED_STATUSES or code >= 500:
        return None
    response["headers"] = {
        name: value for name, value in response["headers"].items() if name.lower() in KEPT_RESPONSE_HEADERS
    }
    return response


def _parsed_body(body: Any) -> Any:
    if body is None or body == b"" or body == "":
        return None
    text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else str(body)
    try:
        return json.loads(text)
    except ValueError:
        return text


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _digest_long_strings(value: Any) -> Any:
    """Replace strings longer than LONG_TEXT_CHARS by `{"sha256", "chars", "head"}` (idempotent).

    A model request repeats every FHIR bundle the conversation has seen so far; stored in full,
    the bundles would be written twice per task. A digest matches exactly as strictly, and the
    text itself is the FHIR response recorded earlier in the same cassette.
    """
    if isinstance(value, str) and len(value) > LONG_TEXT_CHARS:
        return {
            "sha256": hashlib.sha256(value.encode("utf-8")).hexdigest(),
            "chars": len(value),
            "head": value[:LONG_TEXT_HEAD],
        }
    if isinstance(value, list):
        return [_digest_long_strings(item) for item in value]
    if isinstance(value, dict):
        return {key: _digest_long_strings(item) for key, item in value.items()}
    return value


def match_json_body(recorded: Any, incoming: Any) -> None:
    """VCR matcher: JSON bodies compare as parsed objects (key order, spacing and digested texts aside)."""
    if _matching_form(recorded.body) != _matching_form(incoming.body):
        raise AssertionError(f"request bodies differ for {incoming.method} {incoming.path}")


def _matching_form(body: Any) -> Any:
    """A body as the matcher compares it: parsed, long texts digested.

    vcrpy asks the matcher about every recorded request for every incoming one, so the same
    bodies (a whole conversation each, for model calls) come again and again: their forms are
    kept by a digest of the body (not the body itself), which costs far less than parsing again."""
    if isinstance(body, str):
        key = b"s" + hashlib.sha256(body.encode("utf-8", "surrogatepass")).digest()
    elif isinstance(body, (bytes, bytearray)):
        key = b"b" + hashlib.sha256(body).digest()
    else:
        return _digest_long_strings(_parsed_body(body))
    with _FORMS_LOCK:
        if key in _FORMS:
            _FORMS.move_to_end(key)
            return _FORMS[key]
    form = _digest_long_strings(_parsed_body(body))
    with _FORMS_LOCK:
        _FORMS[key] = form
        if len(_FORMS) > _MAX_FORMS:
            _FORMS.popitem(last=False)
    return form


# Matching forms kept (a few KB each: long texts are digested), most recently used last.
_MAX_FORMS = 1024
_FORMS: OrderedDict[bytes, Any] = OrderedDict()
_FORMS_LOCK = threading.Lock()


def _text_of(body: Any) -> str | None:
    if isinstance(body, (bytes, bytearray)):
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise ReplayError("a body is not UTF-8 text; medbench cassettes hold text only") from None
    return body


def _encode_request_body(body: Any) -> Any:
    """Request bodies only serve matching: parsed JSON with long texts digested, else lines."""
    text = _text_of(body)
    if text is None or text == "":
        return text
    try:
        return {"json": _digest_long_strings(json.loads(text))}
    except ValueError:
        return {"lines": text.split("\n")}


def _encode_response_body(text: str | None, earlier: list[list[str]]) -> Any:
    """Readable and lossless: `{"json": ...}` for compact JSON, `{"lines": [...]}` otherwise, or
    `{"lines_of": k, "changed": {...}}` for a body that repeats response k but for a few lines
    (the grader re-reads what the agent read; only the bundle id and lastUpdated differ).

    FHIR bodies are pasted into the conversation, so a replayed body must be byte-identical to
    the recorded one: parsed JSON is stored only when re-serializing gives the same text back.
    """
    if text is None:
        earlier.append([])
        return None
    lines = text.split("\n")
    earlier.append(lines)
    if len(lines) == 1:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if parsed is not None and _compact(parsed) == text:
            return {"json": parsed}
    for index, previous in enumerate(earlier[:-1]):
        if len(previous) == len(lines) > 2 * MAX_CHANGED_LINES:
            changed = {str(n): line for n, (old, line) in enumerate(zip(previous, lines)) if old != line}
            if len(changed) <= MAX_CHANGED_LINES:
                return {"lines_of": index, "changed": changed}
    return {"lines": lines}


def _decode_body(stored: Any, earlier: list[list[str]] | None = None) -> str | None:
    if isinstance(stored, dict) and "lines_of" in stored and earlier is not None:
        lines = list(earlier[stored["lines_of"]])
        for number, line in stored["changed"].items():
            lines[int(number)] = line
        text: str | None = "\n".join(lines)
    elif isinstance(stored, dict) and "lines" in stored:
        text = "\n".join(stored["lines"])
    elif isinstance(stored, dict) and "json" in stored:
        text = _compact(stored["json"])
    else:
        text = stored
    if earlier is not None:
        earlier.append(text.split("\n") if text is not None else [])
    return text


def _unindented_array(lines: list[str]) -> str:
    """One body line per file line, flush left: the body reads as itself, without 12 spaces of nesting."""
    return "[\n" + ",\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n]"


class ReviewableJsonSerializer:
    """vcrpy serializer: JSON with two-space indent, bodies as parsed JSON or as lists of lines."""

    @staticmethod
    def serialize(cassette: dict[str, Any]) -> str:
        earlier: list[list[str]] = []
        blocks: dict[str, list[str]] = {}
        marker = f"@@lines-{uuid.uuid4().hex}-"
        for interaction in cassette["interactions"]:
            request, response = interaction["request"], interaction["response"]
            request["body"] = _encode_request_body(request["body"])
            body = _encode_response_body(_text_of(response["body"]["string"]), earlier)
            if isinstance(body, dict) and "lines" in body:
                key = f"{marker}{len(blocks)}"
                blocks[key], body = body["lines"], {"lines": key}
            response["body"]["string"] = body
        text = json.dumps(cassette, indent=2, ensure_ascii=False) + "\n"
        for key, lines in blocks.items():
            text = text.replace(json.dumps(key), _unindented_array(lines), 1)
        return text

    @staticmethod
    def deserialize(text: str) -> dict[str, Any]:
        cassette = json.loads(text)
        earlier: list[list[str]] = []
        for interaction in cassette["interactions"]:
            request, response = interaction["request"], interaction["response"]
            request["body"] = _decode_body(request["body"])
            response["body"]["string"] = _decode_body(response["body"]["string"], earlier)
        return cassette


def read_manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ReplayError(f"{path} is not valid JSON ({error}); delete it and re-record") from None


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Atomic write (temp file + rename), so concurrent xdist workers never leave a torn file."""
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    handle, temp = tempfile.mkstemp(dir=folder, prefix=".manifest-", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.chmod(temp, 0o644)
    os.replace(temp, folder / MANIFEST_NAME)


def build_manifest(identity: dict[str, Any], task_set: dict[str, Any]) -> dict[str, Any]:
    """What a cassette folder was recorded for; `identity` is the run identity minus the run name."""
    return {
        "format": MANIFEST_FORMAT,
        "identity": identity,
        "task_set": task_set,
        "matching": ["method", "path", "query", "body (parsed JSON)"],
        "recorded": ["model endpoint", "FHIR server (agent and grader requests)"],
        "filtered": {
            "request_headers_kept": sorted(KEPT_REQUEST_HEADERS),
            "response_headers_kept": sorted(KEPT_RESPONSE_HEADERS),
            "query_parameters_dropped": list(SECRET_QUERY_PARAMETERS),
            "statuses_not_recorded": "408, 409, 429, 5xx",
        },
    }


def identity_differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """`name: recorded -> current` for every identity field that differs."""
    return [
        f"{key}: {recorded.get(key)!r} -> {current.get(key)!r}"
        for key in sorted(set(recorded) | set(current))
        if recorded.get(key) != current.get(key)
    ]


def check_manifest(folder: Path, mode: str, identity: dict[str, Any]) -> None:
    """Refuse cassettes recorded with other settings, unless the mode re-records them (all, rewrite).

    Replaying them would fail every task with a cassette mismatch, and `once`/`new_episodes`
    would mix two task sets in one folder; the error names the ways out.
    """
    manifest = read_manifest(folder)
    if manifest is None or mode in ("all", "rewrite"):
        return
    differences = identity_differences(manifest.get("identity", {}), identity)
    if differences:
        raise ReplayError(
            f"the cassettes in {folder} were recorded with other settings ({'; '.join(differences)}). "
            "Replay with the recorded settings; or run live without cassettes (--disable-recording); "
            "or record a separate set (--run-name=NAME --record-mode=once); "
            "or replace them (--record-mode=rewrite, after deleting the folder)."
        )


def unplayed_interactions(cassette: Any) -> int:
    """How many recorded interactions a replay never used (a diverged replay leaves some behind)."""
    return len(cassette) - sum(1 for count in cassette.play_counts.values() if count > 0)
