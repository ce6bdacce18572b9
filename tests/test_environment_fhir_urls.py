"""The URL policy: only URLs under the display base may reach the FHIR server, in any spelling."""

import pytest
import requests

from medbench.environment.fhir_urls import Allowed, Refused, route

BASE = "http://localhost:8080/fhir/"


@pytest.mark.parametrize(
    ("url", "suffix"),
    [
        ("http://localhost:8080/fhir/Patient?name=Smith&_format=json", "/Patient?name=Smith&_format=json"),
        ("http://localhost:8080/fhir/metadata&_format=json", "/metadata&_format=json"),
        ("http://localhost:8080/fhir/Patient/S123", "/Patient/S123"),
        ("http://localhost:8080/fhir/", "/"),
        # HAPI's paging links drop the base's trailing slash
        ("http://localhost:8080/fhir?_getpages=abc&_getpagesoffset=20", "?_getpages=abc&_getpagesoffset=20"),
        ("http://localhost:8080/fhir", ""),
        # spellings requests normalises to the same server
        ("HTTP://LOCALHOST:8080/fhir/Patient", "/Patient"),
        ("http://localhost:08080/fhir/Patient", "/Patient"),
        ("  http://localhost:8080/fhir/Patient", "/Patient"),
        # quoting as requests does it
        ("http://localhost:8080/fhir/Patient?name=a b", "/Patient?name=a%20b"),
        ("http://localhost:8080/fhir/Patient?name=Zoë", "/Patient?name=Zo%C3%AB"),
        # a resolved dot segment that stays under the base is what requests sends anyway
        ("http://localhost:8080/fhir/Patient/../Observation?code=K", "/Observation?code=K"),
        # query strings may hold anything; they cannot change where the request goes
        ("http://localhost:8080/fhir/Patient?next=http://127.0.0.1:9/leak", "/Patient?next=http://127.0.0.1:9/leak"),
        ("http://localhost:8080/fhir/Patient?q=..%2F..%2Fadmin", "/Patient?q=..%2F..%2Fadmin"),
    ],
)
def test_urls_under_the_display_base_are_allowed_with_the_part_after_the_base(url, suffix):
    assert route(url, BASE) == Allowed(suffix)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:9999/leak", "host"),
        ("http://localhost:9999/fhir/Patient", "host"),
        ("http://localhost/fhir/Patient", "host"),  # port 80, not 8080
        ("http://localhost.evil.example:8080/fhir/", "host"),
        ("http://evil.example/fhir/Patient", "host"),
        ("http://[::1]:8080/fhir/Patient", "host"),
        ("http://localhöst:8080/fhir/Patient", "host"),
        ("https://localhost:8080/fhir/Patient", "scheme"),
        ("ftp://localhost:8080/fhir/Patient", "scheme"),
        ("//localhost:8080/fhir/Patient", "scheme"),
        ("http://localhost:8080@127.0.0.1:9999/fhir/Patient", "user info"),
        ("http://user:pw@localhost:8080/fhir/Patient", "user info"),
        ("http://localhost:8080/admin", "path"),
        ("http://localhost:8080/fhirx/Patient", "path"),
        ("http://localhost:8080/fhir/../admin", "path"),
        ("http://localhost:8080/fhir/%2e%2e/admin", "dot segment"),
        ("http://localhost:8080/fhir/%2E%2e/admin", "dot segment"),
        ("http://localhost:8080/fhir/%252e%252e/admin", "dot segment"),
        ("http://localhost:8080/fhir/Patient%2f..%2f..%2fadmin", "dot segment"),
        ("http://localhost:8080/fhir/..;/admin", "dot segment"),
        ("http://localhost:8080/fhir/.;x/Patient", "dot segment"),
        ("http://localhost:8080/fhir/Patient\\..\\..\\admin", "backslash"),
        ("http://localhost:8080\\@127.0.0.1:9999/fhir/", "backslash"),
        ("http://localhost:8080/fhir/%5c..%5cadmin", "backslash"),
        ("http://localhost:8080/fhir/Patient#@127.0.0.1:9999/", "fragment"),
        ("http://localhost:8080/fhir/Patient?x=1#frag&_format=json", "fragment"),
    ],
)
def test_urls_elsewhere_are_refused_with_a_reason(url, why):
    decision = route(url, BASE)
    assert isinstance(decision, Refused)
    assert why in decision.reason
    assert decision.message.startswith(f"Refused: {url} is not under the FHIR base URL")


def test_a_base_without_trailing_slash_is_read_as_the_same_base():
    assert route("http://localhost:8080/fhir/Patient", "http://localhost:8080/fhir") == Allowed("/Patient")


def test_default_ports_are_equal_to_explicit_ones():
    assert route("https://fhir.example:443/r4/Patient", "https://fhir.example/r4/") == Allowed("/Patient")
    assert isinstance(route("https://fhir.example:8443/r4/Patient", "https://fhir.example/r4/"), Refused)


def test_a_base_path_prefix_of_a_longer_segment_does_not_match():
    assert isinstance(route("http://localhost:8080/fhir2/Patient", "http://localhost:8080/fhir/"), Refused)


def test_urls_requests_cannot_prepare_raise_requests_own_error_for_upstream_wording():
    with pytest.raises(requests.exceptions.MissingSchema):
        route("Patient?name=Smith&_format=json", BASE)
    with pytest.raises(requests.exceptions.InvalidURL):
        route("http://localhost:80800/fhir/Patient", BASE)
    with pytest.raises(requests.exceptions.InvalidURL):
        route("http://localhost:8080.evil.example/fhir/", BASE)
