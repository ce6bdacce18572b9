"""Read the transcripts of a run folder, joined to their runs.jsonl lines, and lay out their turns.

The transcript viewer and `export-traces` both start here. A run folder can hold several
transcripts for one attempt (a resumed run rewrites an attempt), so the runs.jsonl line decides:
its `transcript_id` names the transcript that was graded. transcripts.jsonl can be large (about
46 MB per 300 tasks at full scale), so it is streamed line by line and never held whole.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medbench.agent.protocol import (
    CALL_FINISH_HINT,
    GET_ERROR_PREFIX,
    GET_OK_PREFIX,
    POST_ACCEPTED,
    POST_ERROR_PREFIX,
    POST_INVALID,
    FinishAction,
    GetAction,
    PostAction,
    parse_action,
)
from medbench.reports.load import category_sort_key, task_category
from medbench.results.records import RUNS_FILE, TRANSCRIPTS_FILE, RecordKey, record_key
from medbench.results.writer import read_jsonl

_GET_OK_SUFFIX = ". " + CALL_FINISH_HINT
_HTTP_STATUS = re.compile(r"^(\d{3}) ")
_QUESTION = "\nQuestion: "
_CONTEXT = "\nContext: "


@dataclass(frozen=True)
class Attempt:
    """One attempt: its runs.jsonl line and the transcript that line names (None if not recorded)."""

    run: dict[str, Any]
    transcript: dict[str, Any] | None

    @property
    def key(self) -> RecordKey:
        return record_key(self.run)

    @property
    def history(self) -> list[dict[str, str]]:
        return list(self.transcript.get("history") or []) if self.transcript else []


def attempt_sort_key(key: RecordKey) -> tuple[Any, ...]:
    """Category in natural order (task10 after task9), then task number, then attempt."""
    task_id, attempt = key
    number = re.search(r"(\d+)$", task_id)
    return (category_sort_key(task_category(task_id)), int(number.group(1)) if number else -1, task_id, attempt)


def read_run_lines(folder: Path) -> dict[RecordKey, dict[str, Any]]:
    """runs.jsonl of one run folder, last line per (task, attempt), in task order."""
    lines: dict[RecordKey, dict[str, Any]] = {}
    for line in read_jsonl(Path(folder) / RUNS_FILE):
        if isinstance(line, dict) and "task_id" in line:
            lines[record_key(line)] = line
    return {key: lines[key] for key in sorted(lines, key=attempt_sort_key)}


def has_transcripts(folder: Path) -> bool:
    return (Path(folder) / TRANSCRIPTS_FILE).is_file()


def iter_graded_transcripts(
    folder: Path, runs: dict[RecordKey, dict[str, Any]]
) -> Iterator[tuple[RecordKey, dict[str, Any]]]:
    """(key, transcript) for every attempt in `runs` whose transcript was recorded, in file order.

    The transcript is the one the run line's `transcript_id` names; for run lines without one
    (older writers) the last transcript of that (task, attempt) is used, which costs a first
    pass over the file to find it.
    """
    path = Path(folder) / TRANSCRIPTS_FILE
    if not path.is_file():
        return
    wanted = {key: run.get("transcript_id") for key, run in runs.items()}
    last_line: dict[RecordKey, int] = {}
    if any(value is None for value in wanted.values()):
        for number, transcript in _iter_jsonl(path):
            key = _transcript_key(transcript)
            if key in wanted and wanted[key] is None:
                last_line[key] = number
    for number, transcript in _iter_jsonl(path):
        key = _transcript_key(transcript)
        if key not in wanted:
            continue
        if wanted[key] is not None and transcript.get("transcript_id") == wanted[key]:
            wanted[key] = ""  # found: a later duplicate with the same id is ignored
            yield key, transcript
        elif wanted[key] is None and last_line.get(key) == number:
            yield key, transcript


def iter_attempts(folder: Path) -> Iterator[Attempt]:
    """Every graded attempt of a run folder with its transcript, in task order.

    Holds the selected transcripts in memory; the viewer, which must not, streams
    `iter_graded_transcripts` instead.
    """
    runs = read_run_lines(folder)
    found = dict(iter_graded_transcripts(folder, runs))
    for key, run in runs.items():
        yield Attempt(run, found.get(key))


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except ValueError:
                continue  # a torn tail of an interrupted write; read_jsonl warns about the same lines in runs.jsonl
            if isinstance(row, dict) and "task_id" in row:
                yield number, row


def _transcript_key(transcript: dict[str, Any]) -> RecordKey:
    return record_key(transcript)


def prompt_parts(prompt: str) -> tuple[str, str]:
    """(context, question) of an opening prompt built from a `Context: ...\\nQuestion: ...` template."""
    head, sep, question = prompt.rpartition(_QUESTION)
    if not sep:
        return "", ""
    _, sep, context = head.rpartition(_CONTEXT)
    return (context.strip() if sep else ""), question.strip()


def observation(text: str) -> dict[str, Any]:
    """A user turn after the opening prompt, read as the FHIR exchange the agent loop wrote it for."""
    if text.startswith(GET_OK_PREFIX):
        body = text[len(GET_OK_PREFIX) :]
        if body.endswith(_GET_OK_SUFFIX):
            body = body[: -len(_GET_OK_SUFFIX)]
        return {"kind": "fhir", "method": "GET", "status": "OK", "body": body}
    if text.startswith(GET_ERROR_PREFIX):
        return {"kind": "fhir", "method": "GET", "status": _error_status(text[len(GET_ERROR_PREFIX) :]), "body": text}
    if text == POST_ACCEPTED:
        return {"kind": "fhir", "method": "POST", "status": "accepted", "body": text}
    if text == POST_INVALID:
        return {"kind": "fhir", "method": "POST", "status": "invalid", "body": text}
    if text.startswith(POST_ERROR_PREFIX):
        return {"kind": "fhir", "method": "POST", "status": _error_status(text[len(POST_ERROR_PREFIX) :]), "body": text}
    return {"kind": "user", "text": text}


def _error_status(message: str) -> str:
    match = _HTTP_STATUS.match(message)
    return match.group(1) if match else "error"


def agent_turn(text: str) -> dict[str, Any]:
    """A model answer with the action the agent loop's own parser reads in it."""
    action = parse_action(text)
    turn: dict[str, Any] = {"kind": "agent", "text": text}
    if isinstance(action, GetAction):
        turn.update(action="GET", url=action.url)
    elif isinstance(action, PostAction):
        turn.update(
            action="POST",
            url=action.url,
            payload=json.dumps(action.payload, indent=2, ensure_ascii=False) if action.valid else None,
        )
    elif isinstance(action, FinishAction):
        turn.update(action="FINISH", result=action.result)
    else:
        turn.update(action="invalid", why=action.reason)
    return turn


def lay_out_turns(history: list[dict[str, str]], calls: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The conversation as the viewer shows it: prompt, then agent answers and what came back.

    A FHIR exchange carries the URL of the request that produced it (as the harness sent it).

    Successful model calls pair with agent turns in order, giving each answer its tokens and
    latency; when the counts disagree (an old or edited transcript) no pairing is attempted.
    """
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(history):
        content = str(message.get("content", ""))
        if message.get("role") == "agent":
            turns.append(agent_turn(content))
        elif index == 0:
            turns.append({"kind": "prompt", "text": content})
        else:
            turns.append(observation(content))
            if turns[-1]["kind"] == "fhir" and len(turns) > 1 and turns[-2].get("url"):
                turns[-1]["url"] = turns[-2]["url"]
    answered = [call for call in calls or [] if call.get("ok")]
    agent_turns = [turn for turn in turns if turn["kind"] == "agent"]
    if answered and len(answered) == len(agent_turns):
        for turn, call in zip(agent_turns, answered):
            turn.update(
                prompt_tokens=call.get("prompt_tokens"),
                completion_tokens=call.get("completion_tokens"),
                latency_s=call.get("latency_s"),
            )
    return turns
