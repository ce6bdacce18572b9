"""Tools mode (`--protocol=tools`): a task set's function catalog as OpenAI function tools.

The text protocol shows the catalog as JSON and lets the model write GET/POST/FINISH lines;
tools mode hands the same catalog to the endpoint as `tools`, so models that call functions
natively are measured on the same tasks. Every catalog entry becomes one tool:

- `GET <base>Resource` -> `search_<resources>` (plural snake case, e.g. `search_medication_requests`);
  when two entries search one resource (the catalogs' lab and vital-sign Observation searches),
  each gets the required parameters that tell it apart: `search_observations_by_code`,
  `search_observations_by_category`. Names are derived from the catalog's structure, not its
  prose, so the official catalog and ours give the same names.
- `POST <base>Resource` -> `create_<resource>` (`create_medication_request`).

Three tools are ours (medbench/data/tools_mode.json): `create_resource` (POST a resource type no
create_ tool covers), `get_next_page` (follow a Bundle's `next` link, which a text-protocol
model does with GET) and `finish(answers)`.

Schemas: the model is shown each entry's parameters as the catalog gives them (nested shapes,
descriptions, `required`, enums). Arguments are checked against the catalog's contract at the
level of the entry's own parameters -- required ones present, their JSON types and enums --
while shapes nested inside a FHIR resource are left, as in text mode, to the server and the
graders: the official catalog declares `dosageInstruction[].route` an object, yet the official
grader requires the string "IV", so enforcing nested shapes would make correct orders impossible.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from jsonschema import Draft202012Validator

from medbench.package_data import data_file
from medbench.tasks.task import Task, TaskSet

TOOLS_MODE_FILE = data_file("tools_mode.json")
TOOLS_PROMPT_FILE = data_file("prompt_tools.txt")

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
SEARCH_PREFIX = "search_"
CREATE_PREFIX = "create_"
FINISH = "finish"
NEXT_PAGE = "get_next_page"
CREATE_RESOURCE = "create_resource"
FORMAT_PARAMETER = "_format=json"

# What each kind of tool does on the wire, in the text protocol's words.
SEARCH, CREATE, CREATE_ANY, NEXT, END = "search", "create", "create_resource", "next_page", "finish"
_EXTRA_KINDS = {CREATE_RESOURCE: CREATE_ANY, NEXT_PAGE: NEXT, FINISH: END}
ACTION_OF_KIND = {SEARCH: "GET", NEXT: "GET", CREATE: "POST", CREATE_ANY: "POST", END: "FINISH"}

_ENTRY = re.compile(r"^\s*(GET|POST)\s+(\S+)\s*$", re.IGNORECASE)
_RESOURCE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
# Keywords that constrain a value itself; nested ones (properties, items, ...) are not enforced.
_TOP_LEVEL_KEYWORDS = (
    "type",
    "enum",
    "const",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
)
MAX_PROBLEMS = 8


class CatalogError(ValueError):
    """A function-catalog entry that cannot become a tool (its name is not `GET|POST <url>`)."""


@dataclass(frozen=True)
class Tool:
    """One tool: what the endpoint is shown (`spec()`) and what calling it does (`kind`, `resource`)."""

    name: str
    description: str
    parameters: dict[str, Any]
    kind: str
    resource: str | None = None
    source: str | None = None
    argument_schema: dict[str, Any] = field(default_factory=dict, repr=False)

    def spec(self) -> dict[str, Any]:
        """The OpenAI `tools` entry."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    @property
    def action(self) -> str:
        """`GET`, `POST` or `FINISH`: the text-protocol action this tool stands for."""
        return ACTION_OF_KIND[self.kind]

    def argument_problems(self, arguments: Any) -> list[str]:
        """Why these (parsed) arguments do not fit the tool, in words a model can act on; [] when they do."""
        validator = _validator(json.dumps(self.argument_schema, sort_keys=True))
        errors = sorted(validator.iter_errors(arguments), key=lambda e: (list(map(str, e.absolute_path)), e.message))
        problems = [f"{_path(error.absolute_path)}{error.message}" for error in errors[:MAX_PROBLEMS]]
        if len(errors) > MAX_PROBLEMS:
            problems.append(f"and {len(errors) - MAX_PROBLEMS} more")
        return problems


@dataclass(frozen=True)
class ToolSet:
    """The tools of one task set, in catalog order, then ours."""

    tools: tuple[Tool, ...]

    @property
    def names(self) -> list[str]:
        return [tool.name for tool in self.tools]

    def get(self, name: str) -> Tool | None:
        for tool in self.tools:
            if tool.name == name:
                return tool
        return None

    def specs(self) -> list[dict[str, Any]]:
        return [tool.spec() for tool in self.tools]


def build_tools(functions: Sequence[Mapping[str, Any]]) -> ToolSet:
    """The tools for a function catalog (official `funcs_v1.json` format); raises CatalogError."""
    entries = [_entry(function) for function in functions]
    names = _catalog_names(functions, entries)
    tools = [
        Tool(
            name=name,
            description=str(function.get("description") or ""),
            parameters=_shown_schema(function.get("parameters"), kind),
            kind=kind,
            resource=resource,
            source=str(function["name"]),
            argument_schema=_argument_schema(function.get("parameters"), kind),
        )
        for name, function, (kind, resource) in zip(names, functions, entries, strict=True)
    ]
    for extra in _mode_data()["extra_tools"]:
        kind = _EXTRA_KINDS[extra["name"]]
        tools.append(
            Tool(
                name=extra["name"],
                description=extra["description"],
                parameters=copy.deepcopy(extra["parameters"]),
                kind=kind,
                argument_schema=_argument_schema(extra["parameters"], kind),
            )
        )
    duplicated = [name for name, count in Counter(t.name for t in tools).items() if count > 1]
    if duplicated:
        raise CatalogError(f"the catalog gives tools the same name: {', '.join(duplicated)}")
    return ToolSet(tuple(tools))


def tools_for(task_set: TaskSet) -> ToolSet:
    """The task set's tools (built once per catalog)."""
    return _cached_tools(json.dumps(task_set.functions, sort_keys=True))


def tools_prompt(task: Task, api_base: str) -> str:
    """The opening user turn of a tools-mode task: ours (medbench/data/prompt_tools.txt) for every task set."""
    return _prompt_template().format(api_base=api_base, context=task.context, question=task.instruction)


def reply_text(key: str, **values: str) -> str:
    """One of the harness's tools-mode replies (medbench/data/tools_mode.json "replies"), filled in."""
    text: str = _mode_data()["replies"][key]
    return text.format(**values) if values else text


def search_url(api_base: str, resource: str, arguments: Mapping[str, Any]) -> str:
    """`<base><Resource>?<arguments>&_format=json`: the GET a search call stands for.

    Values go out as the text protocol would write them (numbers and booleans as JSON, lists
    as repeated parameters), percent-encoded; `_format=json` is added as the text protocol adds it.
    """
    pairs: list[tuple[str, str]] = []
    for key, value in arguments.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((str(key), item if isinstance(item, str) else json.dumps(item)))
    query = urlencode(pairs, quote_via=quote, safe=":/,")
    return f"{api_base}{resource}?{query + '&' if query else ''}{FORMAT_PARAMETER}"


def resource_words(resource: str) -> str:
    """`MedicationRequest` -> `medication_request`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", resource).lower()


def search_tool_name(resource: str) -> str:
    """`Observation` -> `search_observations` (before any qualifier that tells two searches apart)."""
    return SEARCH_PREFIX + _plural(resource_words(resource))


def create_tool_name(resource: str) -> str:
    """`ServiceRequest` -> `create_service_request`."""
    return CREATE_PREFIX + resource_words(resource)


def _plural(words: str) -> str:
    if re.search(r"[^aeiou]y$", words):
        return words[:-1] + "ies"
    if words.endswith(("s", "x", "ch", "sh")):
        return words + "es"
    return words + "s"


def _entry(function: Mapping[str, Any]) -> tuple[str, str]:
    """(kind, resource) of a catalog entry named `GET {api_base}/Resource` or `POST [base]Resource`."""
    name = str(function.get("name", ""))
    match = _ENTRY.match(name)
    resource = re.split(r"[/\]}]", match.group(2))[-1] if match else ""
    if not match or not _RESOURCE.match(resource):
        raise CatalogError(
            f"function {name!r}: expected a name like 'GET {{api_base}}/Patient' or 'POST [base]Observation'"
        )
    return (SEARCH if match.group(1).upper() == "GET" else CREATE), resource


def _catalog_names(functions: Sequence[Mapping[str, Any]], entries: list[tuple[str, str]]) -> list[str]:
    """Readable, stable names; entries of one kind and resource are told apart by required parameters."""
    names = []
    for index, (kind, resource) in enumerate(entries):
        base = search_tool_name(resource) if kind == SEARCH else create_tool_name(resource)
        siblings = [i for i, entry in enumerate(entries) if entry == (kind, resource)]
        names.append(base if len(siblings) == 1 else _fit(f"{base}_{_qualifier(functions, index, siblings)}"))
    return names


def _qualifier(functions: Sequence[Mapping[str, Any]], index: int, siblings: list[int]) -> str:
    """`by_<required parameters only this entry has>`, else its position among its siblings."""
    required = {i: _required(functions[i]) for i in siblings}
    shared = set.intersection(*(set(r) for r in required.values()))
    own = {i: [p for p in r if p not in shared] for i, r in required.items()}
    mine = own[index]
    if mine and sum(1 for i in siblings if sorted(own[i]) == sorted(mine)) == 1:
        return "by_" + "_and_".join(_clean(p) for p in mine)
    return str(siblings.index(index) + 1)


def _required(function: Mapping[str, Any]) -> list[str]:
    parameters = function.get("parameters") or {}
    return [str(p) for p in parameters.get("required", [])] if isinstance(parameters, Mapping) else []


def _clean(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "x"


def _fit(name: str) -> str:
    return name[:64]


def _object_schema(parameters: Any) -> dict[str, Any]:
    schema = copy.deepcopy(dict(parameters)) if isinstance(parameters, Mapping) else {}
    schema["type"] = "object"
    schema.setdefault("properties", {})
    return schema


def _shown_schema(parameters: Any, kind: str) -> dict[str, Any]:
    """The catalog's parameters as given; searches also take further FHIR search parameters."""
    schema = _object_schema(parameters)
    if kind == SEARCH:
        schema["additionalProperties"] = copy.deepcopy(_mode_data()["search_extra_parameters"])
    return schema


def _argument_schema(parameters: Any, kind: str) -> dict[str, Any]:
    """What is enforced: the object, its required parameters and each parameter's own type/enum."""
    shown = _object_schema(parameters)
    properties = {
        name: {key: value[key] for key in _TOP_LEVEL_KEYWORDS if key in value} if isinstance(value, Mapping) else {}
        for name, value in shown["properties"].items()
    }
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if shown.get("required"):
        schema["required"] = list(shown["required"])
    if kind == SEARCH:
        extra = _mode_data()["search_extra_parameters"]
        schema["additionalProperties"] = {key: extra[key] for key in _TOP_LEVEL_KEYWORDS if key in extra}
    return schema


def _path(path: Iterable[Any]) -> str:
    parts = list(path)
    return f"{'.'.join(str(p) for p in parts)}: " if parts else ""


@functools.lru_cache(maxsize=64)
def _validator(schema_text: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_text))


@functools.lru_cache(maxsize=8)
def _cached_tools(functions_text: str) -> ToolSet:
    return build_tools(json.loads(functions_text))


@functools.lru_cache(maxsize=1)
def _mode_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(TOOLS_MODE_FILE.read_text(encoding="utf-8"))
    return data


@functools.lru_cache(maxsize=1)
def _prompt_template() -> str:
    return TOOLS_PROMPT_FILE.read_text(encoding="utf-8").removesuffix("\n")
