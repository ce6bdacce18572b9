"""The kept entry texts of the FHIR server: bounded by bytes, least recently used dropped first."""

from __future__ import annotations

from medbench.fhir.rendered import RenderedEntries


def entry(size: int) -> tuple[str, str, str]:
    return ("Observation", "1", "x" * size)


def test_texts_are_found_by_sequence_number_and_missing_ones_are_not() -> None:
    kept = RenderedEntries()
    kept.keep(1, entry(10))
    assert kept.lookup([1, 2]) == {1: entry(10)}


def test_the_byte_budget_drops_the_least_recently_used_texts_first() -> None:
    kept = RenderedEntries(max_bytes=3 * 1200)
    for seq in (1, 2, 3):
        kept.keep(seq, entry(1000))
    kept.lookup([1])  # 1 is now the most recently used, 2 the least
    kept.keep(4, entry(1000))
    assert set(kept.lookup([1, 2, 3, 4])) == {1, 3, 4}
    assert kept.bytes <= kept.max_bytes


def test_a_text_larger_than_the_whole_budget_is_not_kept() -> None:
    kept = RenderedEntries(max_bytes=500)
    kept.keep(1, entry(1000))
    assert len(kept) == 0
    assert kept.bytes == 0


def test_keeping_a_sequence_number_again_replaces_its_text_and_its_cost() -> None:
    kept = RenderedEntries()
    kept.keep(1, entry(1000))
    kept.keep(1, entry(10))
    assert kept.lookup([1]) == {1: entry(10)}
    assert kept.bytes < 1000
