"""Cassette format, matching, filtering and record-mode rules (medbench.cassettes.files), with real vcrpy objects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vcr.request import Request

from medbench.cassettes import files as cassette_files


def interaction(request_body: str | None, response_body: str, status: int = 200) -> dict:
    return {
        "request": {
            "method": "POST",
            "uri": "http://127.0.0.1:5000/v1/chat/completions",
            "body": request_body,
            "headers": {"Content-Type": ["application/json"]},
        },
        "response": {
            "status": {"code": status, "message": "OK"},
            "headers": {"Content-Type": ["application/json"]},
            "body": {"string": response_body},
        },
    }


def round_trip(body: str) -> str:
    cassette = {"version": 1, "interactions": [interaction(None, body)]}
    text = cassette_files.ReviewableJsonSerializer.serialize(cassette)
    return cassette_files.ReviewableJsonSerializer.deserialize(text)["interactions"][0]["response"]["body"]["string"]


def test_pretty_printed_fhir_bodies_replay_byte_for_byte_and_are_stored_as_lines() -> None:
    body = '{\n  "resourceType": "Bundle",\n  "id": "b1",\n  "total": 0\n}'
    stored = json.loads(
        cassette_files.ReviewableJsonSerializer.serialize({"version": 1, "interactions": [interaction(None, body)]})
    )
    assert stored["interactions"][0]["response"]["body"]["string"] == {"lines": body.split("\n")}
    assert round_trip(body) == body


def test_compact_json_is_stored_parsed_only_when_it_serializes_back_to_the_same_bytes() -> None:
    compact = '{"id":"x","value":1.5,"name":"Müller"}'
    spaced = '{"id": "x", "value": 1.50}'
    assert round_trip(compact) == compact
    assert round_trip(spaced) == spaced
    stored = json.loads(
        cassette_files.ReviewableJsonSerializer.serialize(
            {"version": 1, "interactions": [interaction(None, compact), interaction(None, spaced)]}
        )
    )
    assert stored["interactions"][0]["response"]["body"]["string"] == {
        "json": {"id": "x", "value": 1.5, "name": "Müller"}
    }
    assert stored["interactions"][1]["response"]["body"]["string"] == {"lines": [spaced]}


def test_request_bodies_match_as_parsed_json_so_key_order_and_spacing_do_not_matter() -> None:
    recorded = Request(
        "POST",
        "http://127.0.0.1:1/v1/chat/completions",
        '{"model":"m","messages":[{"role":"user","content":"hi"}]}',
        {},
    )
    same = Request(
        "POST",
        "http://127.0.0.1:2/v1/chat/completions",
        b'{"messages": [{"content": "hi", "role": "user"}], "model": "m"}',
        {},
    )
    cassette_files.match_json_body(recorded, same)


def test_a_changed_prompt_does_not_match_the_recorded_request() -> None:
    recorded = Request(
        "POST", "http://h/v1/chat/completions", '{"model":"m","messages":[{"role":"user","content":"hi"}]}', {}
    )
    changed = Request(
        "POST", "http://h/v1/chat/completions", '{"model":"m","messages":[{"role":"user","content":"hello"}]}', {}
    )
    with pytest.raises(AssertionError, match="request bodies differ"):
        cassette_files.match_json_body(recorded, changed)


def test_matching_decides_the_same_when_the_bodies_come_again() -> None:
    """The matcher keeps each body's parsed form (vcrpy asks about every recorded request for
    every incoming one): asked again, about the same or other bodies, it decides the same."""
    recorded = Request("POST", "http://h/v1/chat/completions", '{"model":"m","messages":[]}', {})
    same = Request("POST", "http://h/v1/chat/completions", b'{"messages": [], "model": "m"}', {})
    other = Request("POST", "http://h/v1/chat/completions", '{"model":"n","messages":[]}', {})
    for _ in range(3):
        cassette_files.match_json_body(recorded, same)
        with pytest.raises(AssertionError, match="request bodies differ"):
            cassette_files.match_json_body(recorded, other)
    assert len(cassette_files._FORMS) <= cassette_files._MAX_FORMS


def test_matching_never_uses_host_or_port() -> None:
    assert cassette_files.vcr_config()["match_on"] == ("method", "path", "query", cassette_files.BODY_MATCHER_NAME)
    assert "record_mode" not in cassette_files.vcr_config()


def test_only_content_type_and_accept_request_headers_are_written() -> None:
    request = Request(
        "POST",
        "http://h/v1/chat/completions",
        "{}",
        {
            "Authorization": "Bearer sk-secret",
            "api-key": "k",
            "X-Api-Key": "k",
            "Cookie": "c=1",
            "X-Secret": "extra-header-value",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    kept = cassette_files.keep_safe_request_headers(request)
    assert sorted(name.lower() for name in kept.headers) == ["accept", "content-type"]


def test_response_headers_are_scrubbed_to_content_type_and_location() -> None:
    response = {
        "status": {"code": 201, "message": "Created"},
        "body": {"string": ""},
        "headers": {
            "Set-Cookie": ["s=1"],
            "openai-organization": ["org-x"],
            "openai-project": ["proj"],
            "Content-Type": ["application/fhir+json"],
            "Location": ["Observation/1"],
        },
    }
    assert cassette_files.keep_replayable_response(response)["headers"] == {
        "Content-Type": ["application/fhir+json"],
        "Location": ["Observation/1"],
    }


@pytest.mark.parametrize("status", [408, 409, 429, 500, 503])
def test_responses_the_client_retries_are_not_recorded(status: int) -> None:
    response = {"status": {"code": status, "message": ""}, "headers": {}, "body": {"string": ""}}
    assert cassette_files.keep_replayable_response(response) is None


@pytest.mark.parametrize("status", [400, 404])
def test_other_client_errors_are_part_of_the_conversation_and_are_recorded(status: int) -> None:
    response = {"status": {"code": status, "message": ""}, "headers": {}, "body": {"string": "{}"}}
    assert cassette_files.keep_replayable_response(response) is not None


def test_existing_cassettes_mean_replay_when_no_record_mode_is_given(tmp_path: Path) -> None:
    assert cassette_files.choose_record_mode(None, False, tmp_path) is None
    (tmp_path / cassette_files.MANIFEST_NAME).write_text("{}")
    assert cassette_files.choose_record_mode(None, False, tmp_path) is None, "a manifest alone is no recording"
    (tmp_path / "task1_1.json").write_text("{}")
    assert cassette_files.choose_record_mode(None, False, tmp_path) == "none"
    assert cassette_files.choose_record_mode("rewrite", False, tmp_path) == "rewrite"
    assert cassette_files.choose_record_mode("once", True, tmp_path) is None


def test_cassettes_recorded_for_another_task_set_are_refused_with_the_ways_out(tmp_path: Path) -> None:
    identity = {"task_set": "generated-v1-seed0", "task_set_sha256": "aaa", "grader": "official"}
    cassette_files.write_manifest(tmp_path, cassette_files.build_manifest(identity, {"name": "generated-v1-seed0"}))
    cassette_files.check_manifest(tmp_path, "none", identity)
    other = dict(identity, task_set="official", task_set_sha256="bbb")
    with pytest.raises(cassette_files.ReplayError) as refused:
        cassette_files.check_manifest(tmp_path, "none", other)
    message = str(refused.value)
    assert "task_set_sha256: 'aaa' -> 'bbb'" in message
    assert "--disable-recording" in message and "--run-name" in message
    with pytest.raises(cassette_files.ReplayError):
        cassette_files.check_manifest(tmp_path, "once", other)
    cassette_files.check_manifest(tmp_path, "rewrite", other)


def test_cassette_paths_follow_the_results_layout() -> None:
    root = Path("cassettes")
    assert cassette_files.cassette_dir(root, "gpt-4o") == root / "gpt-4o"
    assert cassette_files.cassette_dir(root, "gpt-4o", "nightly") == root / "gpt-4o" / "nightly"


def test_a_grader_reread_of_the_same_bundle_is_stored_as_a_patch_and_replays_byte_for_byte() -> None:
    lines = [
        "{",
        '  "resourceType": "Bundle",',
        '  "id": "first-id",',
        '  "meta": {',
        '    "lastUpdated": "T1"',
        "  },",
    ]
    lines += [f'  "entry{n}": {n},' for n in range(40)] + ["}"]
    agent_read, grader_read = "\n".join(lines), "\n".join(lines).replace("first-id", "second-id").replace("T1", "T2")
    cassette = {"version": 1, "interactions": [interaction(None, agent_read), interaction(None, grader_read)]}
    text = cassette_files.ReviewableJsonSerializer.serialize(cassette)
    stored = json.loads(text)["interactions"][1]["response"]["body"]["string"]
    assert stored == {"lines_of": 0, "changed": {"2": '  "id": "second-id",', "4": '    "lastUpdated": "T2"'}}
    bodies = [
        i["response"]["body"]["string"]
        for i in cassette_files.ReviewableJsonSerializer.deserialize(text)["interactions"]
    ]
    assert bodies == [agent_read, grader_read]
    assert '\n"  \\"entry3\\": 3,",\n' in text, "body lines are written flush left, one per line"


def test_long_texts_in_model_requests_are_stored_as_digests_that_still_match_exactly() -> None:
    bundle = "x" * (cassette_files.LONG_TEXT_CHARS + 1)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": bundle}]})
    cassette = {"version": 1, "interactions": [interaction(body, "{}")]}
    text = cassette_files.ReviewableJsonSerializer.serialize(cassette)
    assert bundle not in text
    stored = cassette_files.ReviewableJsonSerializer.deserialize(text)["interactions"][0]["request"]["body"]
    recorded = Request("POST", "http://h/v1/chat/completions", stored, {})
    cassette_files.match_json_body(recorded, Request("POST", "http://h/v1/chat/completions", body, {}))
    edited = body.replace("xxx", "xyx", 1)
    with pytest.raises(AssertionError):
        cassette_files.match_json_body(recorded, Request("POST", "http://h/v1/chat/completions", edited, {}))


def test_unplayed_interactions_counts_what_a_replay_never_asked_for(tmp_path: Path) -> None:
    from vcr import matchers
    from vcr.cassette import Cassette

    cassette = Cassette(str(tmp_path / "c.json"), match_on=(matchers.method, matchers.path, matchers.query))
    requests = [Request("GET", f"http://h/fhir/Patient?identifier=S{n}", None, {}) for n in range(3)]
    for request in requests:
        cassette.append(request, {"status": {"code": 200, "message": "OK"}, "headers": {}, "body": {"string": "{}"}})
    assert cassette_files.unplayed_interactions(cassette) == 3
    cassette.play_response(requests[0])
    cassette.play_response(requests[2])
    assert cassette_files.unplayed_interactions(cassette) == 1
