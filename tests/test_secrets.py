"""The secrets scrubber: every echoed form of the key and header values is masked, short values are left alone."""

import json
from urllib.parse import quote

import vcr.request

from medbench.cassettes import files as cassette_files
from medbench.scrubbing import MASK, MIN_SECRET_CHARS, NO_SECRETS, Scrubber

KEY = "sk-test-0123456789abcdef"
BASIC = "Basic dXNlcjpsb25nLXBhc3N3b3Jk"


def test_the_key_and_its_bearer_header_are_masked_wherever_they_occur():
    scrub = Scrubber.of(KEY)
    assert scrub.text(f"Incorrect API key provided: Bearer {KEY}.") == f"Incorrect API key provided: {MASK}."
    assert scrub.text(f"key={KEY}&x=1") == f"key={MASK}&x=1"


def test_every_extra_header_value_is_masked_and_so_is_the_token_of_a_scheme_value():
    scrub = Scrubber.of(None, {"Authorization": BASIC, "X-Tenant": "tenant-secret-77"})
    assert scrub.text(f"got {BASIC} for tenant-secret-77") == f"got {MASK} for {MASK}"
    assert scrub.text("token dXNlcjpsb25nLXBhc3N3b3Jk rejected") == f"token {MASK} rejected"


def test_json_escaped_and_percent_encoded_echoes_are_masked():
    secret = 'pa"ss/wo\\rd+long'
    scrub = Scrubber.of(secret)
    assert scrub.text(json.dumps({"detail": secret})) == json.dumps({"detail": MASK})
    assert scrub.text(f"?key={quote(secret, safe='')}") == f"?key={MASK}"


def test_values_shorter_than_the_threshold_are_not_scrubbed_at_all():
    scrub = Scrubber.of("x", {"X-Debug": "1", "X-Team": "blue"})
    text = 'request exceeds the available context size; "versionId": "1"; team blue'
    assert scrub.text(text) == text
    assert all(len(form) >= MIN_SECRET_CHARS for form in scrub.forms)


def test_a_short_key_is_still_masked_inside_its_bearer_header():
    assert Scrubber.of("x").text("Incorrect API key provided: Bearer x") == f"Incorrect API key provided: {MASK}"


def test_no_secrets_leaves_everything_unchanged():
    data = {"a": ["Bearer x", 1, None], "b": "text"}
    assert NO_SECRETS.data(data) == data and not NO_SECRETS
    assert Scrubber.of(None, {}).text("anything") == "anything"


def test_data_masks_strings_and_keys_in_nested_json_and_bytes():
    scrub = Scrubber.of(KEY)
    assert scrub.data({KEY: [f"x {KEY}", {"n": 1}]}) == {MASK: [f"x {MASK}", {"n": 1}]}
    assert scrub.raw(f'{{"error": "{KEY}"}}'.encode()) == f'{{"error": "{MASK}"}}'.encode()


def test_the_longest_form_is_masked_first_so_no_fragment_of_a_secret_is_left():
    scrub = Scrubber.of(KEY, {"Authorization": f"Bearer {KEY}-extended"})
    assert scrub.text(f"Bearer {KEY}-extended") == MASK


# --- cassettes: vcrpy's before_record hooks -----------------------------------------------------


def test_cassette_hooks_mask_secrets_in_kept_4xx_bodies_urls_and_request_bodies():
    config = cassette_files.vcr_config(Scrubber.of(KEY, {"Authorization": BASIC}))
    request = vcr.request.Request(
        "POST",
        f"http://model.example/v1/chat?key={KEY}",
        json.dumps({"note": BASIC}).encode(),
        {"Authorization": BASIC, "Content-Type": "application/json"},
    )
    recorded = config["before_record_request"](request)
    assert KEY not in recorded.uri and b"dXNlcjpsb25n" not in recorded.body
    assert dict(recorded.headers) == {"Content-Type": "application/json"}
    response = {
        "status": {"code": 401, "message": ""},
        "headers": {"Content-Type": ["application/json"]},
        "body": {"string": json.dumps({"error": f"Incorrect API key provided: Bearer {KEY}"}).encode()},
    }
    kept = config["before_record_response"](response)
    assert kept["body"]["string"] == json.dumps({"error": f"Incorrect API key provided: {MASK}"}).encode()


def test_cassette_hooks_still_drop_retried_statuses():
    config = cassette_files.vcr_config(Scrubber.of(KEY))
    response = {"status": {"code": 429, "message": ""}, "headers": {}, "body": {"string": b""}}
    assert config["before_record_response"](response) is None
