"""The transcript viewer in a real browser: headless Chromium opening the report from disk.

Skipped, with the reason, where Chromium or its driver is not installed (CI installs the Debian
packages `chromium` and `chromium-driver`). Waits are on page conditions, never fixed sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.transcripts import GLUCOSE_URL, sample_results
from medbench.reports import write_reports
from medbench.reports.browser import find_chromium, headless_chromium

pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

FOUND = find_chromium()
pytestmark = pytest.mark.skipif(isinstance(FOUND, str), reason=f"headless Chromium test skipped: {FOUND}")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = sample_results(tmp_path_factory.mktemp("results"))
    write_reports(root, root / "report")
    return root / "report"


@pytest.fixture(scope="module")
def browser() -> Iterator:
    assert not isinstance(FOUND, str)
    driver = headless_chromium(*FOUND)
    try:
        yield driver
    finally:
        driver.quit()


def open_viewer(browser, report: Path, fragment: str = "") -> None:
    """A fresh load (a new fragment alone would not reload the page the last test left open)."""
    browser.get("about:blank")
    browser.get((report / "transcripts.html").as_uri() + fragment)
    wait_for(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")


def wait_for(browser, condition, timeout: float = 15):
    return WebDriverWait(browser, timeout).until(condition)


def settles_to(browser, read, expected, timeout: float = 15) -> None:
    """Assert what the page shows once it has caught up: handlers (a <details> toggle, a re-render)
    may run after the click or selection returned, so wait for the condition, never a fixed time."""
    try:
        WebDriverWait(browser, timeout).until(lambda driver: read(driver) == expected)
    except TimeoutException:
        pass  # the assertion below shows what the page holds instead
    assert read(browser) == expected


def rows(browser) -> list[tuple[str, str, str]]:
    """(model, task, verdict) of each listed attempt, read in one script so a re-render cannot interleave."""
    cells = browser.execute_script(
        "return [...document.querySelectorAll('tr.attempt')].map(r => [...r.cells].map(c => c.textContent));"
    )
    return [(row[0], row[1], row[4]) for row in cells]


def page_errors(browser) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def test_the_viewer_opens_from_disk_and_lists_every_attempt(browser, report: Path):
    open_viewer(browser, report)
    assert len(rows(browser)) == 8
    assert {model for model, _, _ in rows(browser)} == {"strong-model", "weak-model"}
    assert page_errors(browser) == []


def test_verdict_and_category_filters_narrow_the_list(browser, report: Path):
    open_viewer(browser, report)
    Select(browser.find_element(By.ID, "verdict")).select_by_value("incorrect")
    settles_to(
        browser,
        lambda d: sorted(rows(d)),
        [
            ("weak-model", "task5_1", "incorrect"),
            ("weak-model", "task7_1", "incorrect"),
            ("weak-model", "task7_2", "incorrect"),
        ],
    )
    Select(browser.find_element(By.ID, "category")).select_by_value("task7")
    settles_to(browser, lambda d: [task for _, task, _ in rows(d)], ["task7_1", "task7_2"])
    assert "verdict=incorrect" in browser.current_url and "category=task7" in browser.current_url


def test_the_model_filter_keeps_only_the_chosen_model(browser, report: Path):
    open_viewer(browser, report)
    browser.find_element(By.CSS_SELECTOR, "#model-filter summary").click()
    browser.find_element(By.CSS_SELECTOR, '#model-list input[value="strong-model"]').click()
    settles_to(browser, lambda d: {model for model, _, _ in rows(d)}, {"strong-model"})


def test_text_search_finds_attempts_by_the_patient_in_their_requests(browser, report: Path):
    open_viewer(browser, report)
    browser.find_element(By.ID, "search").send_keys("S7654321")
    wait_for(browser, lambda d: len(rows(d)) == 2)
    assert {task for _, task, _ in rows(browser)} == {"task7_2"}


def test_a_matrix_cell_of_the_report_opens_the_matching_transcripts(browser, report: Path):
    browser.get((report / "report.html").as_uri())
    browser.find_element(By.CSS_SELECTOR, 'a[href="transcripts.html#model=weak-model&category=task7"]').click()
    wait_for(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    settles_to(browser, rows, [("weak-model", "task7_1", "incorrect"), ("weak-model", "task7_2", "incorrect")])


def test_a_failure_reason_row_filters_to_exactly_that_reason(browser, report: Path):
    browser.get((report / "report.html").as_uri())
    browser.find_element(By.LINK_TEXT, "task7: answer [101] != expected [142]").click()
    wait_for(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    assert rows(browser) == [("weak-model", "task7_1", "incorrect")]
    assert "task7: answer [101] != expected [142]" in browser.find_element(By.ID, "reason-chip").text


def test_an_expanded_transcript_shows_the_graders_reason_and_each_fhir_request(browser, report: Path):
    open_viewer(browser, report, "#model=weak-model&category=task7")
    browser.find_element(By.CSS_SELECTOR, 'tr.attempt[data-task="task7_1"]').click()
    transcript = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "tr.detail .transcript details.fhir"))
    view = browser.find_element(By.CSS_SELECTOR, "tr.detail .transcript")
    assert "Grader's reason: task7: answer [101] != expected [142]" in view.text
    assert f"GET {GLUCOSE_URL} \u2192 OK" in transcript.text
    body = transcript.find_element(By.TAG_NAME, "pre")
    assert body.get_attribute("textContent") == ""  # folded: the bundle enters the page only when opened
    transcript.find_element(By.TAG_NAME, "summary").click()
    settles_to(browser, lambda _: '"value": 142' in body.text, True)
    assert "FINISH([101])" in view.text


def test_a_failed_request_shows_its_http_status(browser, report: Path):
    open_viewer(browser, report, "#model=weak-model&q=task7_2")
    browser.find_element(By.CSS_SELECTOR, "tr.attempt").click()
    fhir = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "tr.detail details.fhir.failed"))
    assert "\u2192 400" in fhir.text


def test_two_models_side_by_side_on_the_same_task(browser, report: Path):
    open_viewer(browser, report, "#model=strong-model&category=task7")
    browser.find_element(By.CSS_SELECTOR, 'tr.attempt[data-task="task7_1"]').click()
    picker = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "tr.detail select.compare-with"))
    Select(picker).select_by_value("weak-model")

    def both_loaded(driver):
        shown = driver.find_elements(By.CSS_SELECTOR, "#compare .columns .transcript")
        return shown if len(shown) == 2 and all("FINISH" in c.text for c in shown) else None

    columns = wait_for(browser, both_loaded)
    assert [c.get_attribute("data-model") for c in columns] == ["strong-model", "weak-model"]
    assert "FINISH([142])" in columns[0].text and "FINISH([101])" in columns[1].text
    assert "compare=task7_1" in browser.current_url
    assert page_errors(browser) == []
