"""The documentation site: built with `mkdocs build --strict`, opened in headless Chromium.

The option page is generated from the plugin's own declarations, so these tests also hold the
manual to the code: every declared option is on the page with its default. Skipped, with the
reason, where mkdocs or the Material theme is not installed (`pip install -e '.[docs]'`; CI
installs it) or where Chromium is missing (as for the transcript viewer's browser test).
Waits are on page conditions, never fixed sleeps.
"""

from __future__ import annotations

import html
import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from helpers.fake_http import base_url, serving, static_files
from medbench.plugin.options import CALL_LIMIT_OPTIONS, OPTIONS
from medbench.reports.browser import find_chromium, headless_chromium

ROOT = Path(__file__).resolve().parents[1]
README_TEST_COMMAND = "pytest tests -q -p no:cacheprovider -n 2"


def hook(name: str) -> ModuleType:
    """A module of docs/hooks/, loaded by path as mkdocs loads it."""
    spec = importlib.util.spec_from_file_location(f"docs_hook_{name}", ROOT / "docs" / "hooks" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it is being executed
    spec.loader.exec_module(module)
    return module


# --- the README and the generated option page (no mkdocs needed) ------------------------------


def test_the_readme_fits_on_a_screen_or_two_and_keeps_cis_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    assert README_TEST_COMMAND in readme
    assert README_TEST_COMMAND in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_readme_has_no_hand_copy_of_the_option_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "| `--model` |" not in readme and "| `--retry-budget" not in readme


def option_entries(page: str) -> dict[str, str]:
    """`### <flags>` heading -> the entry's text, from the generated Markdown."""
    entries = page.split("\n### ")[1:]
    return {entry.split("\n", 1)[0]: entry.split("\n", 1)[1].split("\n## ")[0] for entry in entries}


def test_the_option_page_lists_every_declared_option_with_its_default_env_and_ini_key():
    options_page = hook("options_page")
    entries = option_entries(options_page.render_options_page())
    for option in OPTIONS + CALL_LIMIT_OPTIONS:
        entry = next((text for names, text in entries.items() if names.startswith(f"`{option.flag}")), None)
        assert entry is not None, f"{option.flag} is missing from the generated option page"
        assert html.escape(option.help.replace("%%", "%"), quote=False) in entry, option.flag
        default = getattr(option, "default_text", None) or ("none" if option.default is None else str(option.default))
        env = f"`{option.env}`" if option.env else "(none)"
        ini = f"`{option.ini}`" if option.in_ini else "(none)"
        label_default, label_env, label_ini = options_page.FACTS
        facts = f"{label_default}: {'none' if default == 'none' else f'`{default}`'} · {label_env}: {env} · {label_ini}: {ini}"
        assert facts in entry, option.flag


def test_the_option_page_also_lists_the_options_registered_outside_the_declarations():
    page = hook("options_page").render_options_page()
    registered_elsewhere = "--extra-header --strip-think --resume --task-id --min-task-accuracy --cassettes-dir"
    for flag in registered_elsewhere.split():
        assert f"### `{flag}" in page, flag
    for flag in ("--record-mode", "--disable-recording"):
        assert f"| `{flag}` |" in page, flag


def test_a_page_missing_from_nav_is_added_under_more_topics(tmp_path: Path):
    nav_extension = hook("nav_extension")
    for page in ("index.md", "listed.md", "newcomer.md", "hooks/ignored.md"):
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / page).write_text("# x\n")
    config = {"docs_dir": str(tmp_path), "nav": [{"Home": "index.md"}, {"Section": [{"Listed": "listed.md"}]}]}
    assert nav_extension.on_config(config)["nav"][-1] == {"More topics": ["newcomer.md"]}


# --- the built site ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[docs]')")
    pytest.importorskip("material", reason="mkdocs-material is not installed (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stdout}\n{build.stderr}"
    return out


def test_the_site_builds_strictly_with_one_page_per_subject(site: Path):
    pages = "index options running comparability task-sets ehr fhir-server agent-loop tools-mode graders"
    pages += " builtin-models replay reports training-traces development DESIGN disk-use limits changelog"
    for page in pages.split():
        assert (site / f"{page}.html").is_file(), page


def test_the_built_option_page_holds_every_declared_option(site: Path):
    page = (site / "options.html").read_text(encoding="utf-8")
    for option in OPTIONS + CALL_LIMIT_OPTIONS:
        assert f"<code>{option.flag}" in page, option.flag


FOUND = find_chromium()


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The built site over loopback HTTP, as `mkdocs serve` or `python -m http.server -d site` shows it."""
    with serving(static_files(site)) as server:
        yield base_url(server)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")
    if isinstance(FOUND, str):
        pytest.skip(f"headless Chromium test skipped: {FOUND}")
    driver = headless_chromium(*FOUND)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(browser, url: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get("about:blank")
    browser.get(url)
    WebDriverWait(browser, 15).until(lambda d: d.execute_script("return document.readyState") == "complete")


def wait_for(browser, condition, timeout: float = 15):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(condition)


def page_errors(browser) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def visible(elements: list) -> object | None:
    """The first element a user could type into, or None (the page is still laying out)."""
    return next((element for element in elements if element.is_displayed() and element.is_enabled()), None)


def result_links(browser) -> str:
    """The targets of the search results shown, joined (empty while the index still loads)."""
    return " ".join(
        browser.execute_script(
            "return [...document.querySelectorAll('.md-search-result__link')].map(a => a.getAttribute('href'));"
        )
    )


def headings(browser, level: str) -> list[str]:
    """Visible heading texts of the article, without the permalink sign."""
    return browser.execute_script(
        "return [...document.querySelectorAll('article ' + arguments[0])]"
        ".filter(h => h.offsetParent !== null).map(h => h.textContent.replace('¶', '').trim());",
        level,
    )


def test_the_start_page_renders_with_its_headings_and_leads_to_the_option_page(browser, served: str):
    from selenium.webdriver.common.by import By

    open_page(browser, served + "index.html")
    assert wait_for(browser, lambda d: headings(d, "h1")) == ["medbench"]
    assert {"Quick start (fresh machine)", "Where to read next"} <= set(headings(browser, "h2"))
    browser.find_element(By.CSS_SELECTOR, "nav.md-nav a[href='options.html']").click()
    wait_for(browser, lambda d: headings(d, "h1") == ["Options"])
    assert browser.current_url.endswith("/options.html")
    assert page_errors(browser) == []


def test_the_option_page_renders_the_generated_reference(browser, served: str):
    open_page(browser, served + "options.html")
    assert wait_for(browser, lambda d: headings(d, "h1")) == ["Options"]
    assert headings(browser, "h2")[:2] == ["The medbench group", "pytest-recording's options"]
    entries = headings(browser, "h3")
    for option in OPTIONS + CALL_LIMIT_OPTIONS:
        assert any(entry.startswith(option.flag) for entry in entries), option.flag
    assert page_errors(browser) == []


def test_a_deep_page_opens_at_its_section(browser, served: str):
    open_page(browser, served + "graders.html#state-vs-transcript-the-agreement-report")
    assert wait_for(browser, lambda d: headings(d, "h1")) == ["Graders"]
    assert {
        "official (default)",
        "corrected",
        "state (execute post-mode only)",
        "State vs transcript: the agreement report",
    } <= set(headings(browser, "h2"))
    in_view = browser.execute_script(
        "const r = document.getElementById('state-vs-transcript-the-agreement-report').getBoundingClientRect();"
        "return r.top >= 0 && r.top < window.innerHeight;"
    )
    assert in_view
    assert page_errors(browser) == []


def test_the_site_search_finds_a_fact_on_a_deep_page(browser, served: str):
    from selenium.webdriver.common.by import By

    open_page(browser, served + "index.html")
    field = wait_for(browser, lambda d: visible(d.find_elements(By.CSS_SELECTOR, "input.md-search__input")))
    field.click()
    field.send_keys("cassette_mismatch")
    wait_for(browser, lambda d: "replay.html" in result_links(d))
    assert page_errors(browser) == []


def test_pages_and_links_also_work_opened_from_disk(browser, site: Path):
    from selenium.webdriver.common.by import By

    open_page(browser, (site / "index.html").as_uri())
    browser.find_element(By.CSS_SELECTOR, "nav.md-nav a[href='graders.html']").click()
    wait_for(browser, lambda d: headings(d, "h1") == ["Graders"])
