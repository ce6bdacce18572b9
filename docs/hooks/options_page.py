"""mkdocs hook: the option reference page (`options.md`), written at build time.

The page is generated from what the plugin registers with pytest (`medbench.plugin.pytest_addoption`,
whose `medbench` group is declared in `medbench.plugin.options.OPTIONS`) and from pytest-recording's
own registration, so the manual can never disagree with `pytest --help`: the options are declared
once, in code. `render_options_page()` needs no mkdocs, so a test checks the page without building.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

PAGE = "options.md"
# The labels of the line under each option's help, in this order (tests read the page by them).
FACTS = ("Default", "Environment variable", "`pytest.ini` key")


@dataclass
class RegisteredOption:
    """One `addoption` call as the plugin made it."""

    group: str
    flags: tuple[str, ...]
    settings: dict[str, Any]


@dataclass
class _Group:
    name: str
    recorder: OptionRecorder

    def addoption(self, *flags: str, **settings: Any) -> None:
        self.recorder.options.append(RegisteredOption(self.name, flags, settings))


@dataclass
class OptionRecorder:
    """Stands in for `pytest.Parser`: records the plugin's `addoption`/`addini` calls, in order."""

    options: list[RegisteredOption] = field(default_factory=list)
    ini_keys: list[str] = field(default_factory=list)

    def getgroup(self, name: str, description: str = "", after: str | None = None) -> _Group:
        return _Group(name, self)

    def addini(self, name: str, help: str, *args: Any, **kwargs: Any) -> None:
        self.ini_keys.append(name)


def registered_options() -> OptionRecorder:
    """Everything medbench's plugin and pytest-recording register, as pytest would see it."""
    from pytest_recording import plugin as recording_plugin

    import medbench.plugin

    recorder = OptionRecorder()
    medbench.plugin.pytest_addoption(recorder)  # type: ignore[arg-type]
    recording_plugin.pytest_addoption(recorder)  # type: ignore[arg-type]
    return recorder


def _cell(text: Any) -> str:
    """Help text as a Markdown table cell: argparse's doubled percent undone, `<think>` shown as
    text rather than taken for HTML, pipes escaped."""
    text = html.escape(str(text).replace("%%", "%"), quote=False)
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: Any) -> str:
    return f"`{text}`"


def default_cell(spec: Any) -> str:
    """The declared default as `--help` states it (`default_text` where the declaration has one)."""
    text = getattr(spec, "default_text", None)
    if text is None:
        text = "none" if spec.default is None else str(spec.default)
    return "none" if text == "none" else _code(_cell(text))


def render_options_page() -> str:
    from medbench.plugin.options import CALL_LIMIT_OPTIONS, OPTIONS

    declared = {option.flag: option for option in OPTIONS + CALL_LIMIT_OPTIONS}
    recorder = registered_options()
    lines = [
        "# Options",
        "",
        "<!-- Generated at build time by docs/hooks/options_page.py from the plugin's own option",
        "     declarations (medbench.plugin.options.OPTIONS); edit those, not this page. -->",
        "",
        "The command-line options of the pytest plugin, as `pytest --help` lists them (group",
        '"medbench"). This page is generated when the site is built, from the declarations in',
        "`medbench/plugin/options.py`, so it always matches the installed version.",
        "",
        "An option is read from the command line, else from its environment variable, else from its",
        "`pytest.ini` key (`medbench_<name>`), else its default; each entry says which it has",
        "(`--api-key` has no ini key). How the options work together is described in",
        "[Running the benchmark](running.md); its [notes on some options](running.md#notes-on-some-options)",
        "add what a one-line help cannot say.",
        "",
        "## The medbench group",
        "",
    ]
    medbench = [option for option in recorder.options if option.group == "medbench"]
    for registered in medbench:
        flag = registered.flags[0]
        spec = declared.get(flag)
        metavar = registered.settings.get("metavar")
        names = ", ".join(_code(f"{name} {metavar}" if metavar else name) for name in registered.flags)
        choices = registered.settings.get("choices")
        if spec is not None:
            default = default_cell(spec)
            env = _code(spec.env) if spec.env else "(none)"
            ini = _code(spec.ini) if spec.in_ini else "(none)"
            help_text = spec.help
        else:
            value = registered.settings.get("default")
            default = (
                "off"
                if registered.settings.get("action") == "store_true"
                else (_code(value) if value not in (None, []) else "none")
            )
            env, ini = "(none)", "(none)"
            help_text = registered.settings.get("help", "")
        if choices:
            help_text += f" (one of {', '.join(_code(choice) for choice in choices)})"
        if registered.settings.get("action") == "append" and "repeatable" not in help_text:
            help_text += " (repeatable)"
        lines += [
            f"### {names}",
            "",
            _cell(help_text),
            "",
            f"{FACTS[0]}: {default} · {FACTS[1]}: {env} · {FACTS[2]}: {ini}",
            "",
        ]
    lines += [
        "",
        "## pytest-recording's options",
        "",
        "Record and replay use [pytest-recording](https://github.com/kiwicom/pytest-recording); its",
        'options (group "recording") decide whether a session records, replays or runs live (see',
        "[Deterministic replay](replay.md)).",
        "",
        "| option | default | what |",
        "| --- | --- | --- |",
    ]
    for registered in recorder.options:
        if registered.group != "recording":
            continue
        settings = registered.settings
        default = (
            "off"
            if settings.get("action") == "store_true"
            else (_code(settings["default"]) if settings.get("default") is not None else "none")
        )
        help_text = settings.get("help", "")
        if settings.get("choices"):
            help_text += f" (one of {', '.join(_code(choice) for choice in settings['choices'])})"
        lines.append(f"| {', '.join(map(_code, registered.flags))} | {default} | {_cell(help_text)} |")
    lines.append("")
    return "\n".join(lines)


def on_files(files: Any, config: Any) -> Any:
    """Add the generated page to the site's files (it never exists on disk)."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=render_options_page()))
    return files
