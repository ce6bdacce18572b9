"""The v2 `calculator` tool: arithmetic and date math from one expression, evaluated without `eval`.

Upstream evaluates the model's text with Python `eval` (math, the datetime module, Decimal and
`sum` in scope), which is not a sandbox. This evaluator walks the expression's syntax tree and
allows only what such expressions need: numbers and strings, arithmetic, comparisons, tuples and
lists, `math.<public function or constant>`, `datetime.date|datetime|timedelta|timezone` (their
constructors, `fromisoformat`, and `.days`, `.seconds`, `.total_seconds()`, `.timestamp()`,
`.date()` on the values), `Decimal` and `sum`. Names or attributes starting with `_` are refused,
as are exponents and operands too large to compute quickly. What it evaluates, it evaluates as
Python would, so the model sees `str(result)` exactly as upstream shows it.
"""

from __future__ import annotations

import ast
import datetime
import math
import operator
from collections.abc import Callable
from decimal import Decimal
from typing import Any

MAX_EXPRESSION_CHARS = 2000
MAX_EXPONENT = 10_000
MAX_MAGNITUDE = 10**100
MAX_COMBINATORIAL = 1000
_COMBINATORIAL = (math.factorial, math.comb, math.perm)

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
    ast.Not: operator.not_,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_DATETIME_NAMES = {
    "date": datetime.date,
    "datetime": datetime.datetime,
    "timedelta": datetime.timedelta,
    "timezone": datetime.timezone,
}
# Attributes allowed on values (and classes) of the datetime module.
_VALUE_ATTRIBUTES = {
    "days",
    "seconds",
    "microseconds",
    "total_seconds",
    "timestamp",
    "date",
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "fromisoformat",
    "utc",
    "isoformat",
    "weekday",
}


class CalculatorError(ValueError):
    """The expression is not one the calculator evaluates; the message says why."""


class _Module:
    """A namespace the expression may read attributes of (`math`, `datetime`)."""

    def __init__(self, name: str, members: dict[str, Any]) -> None:
        self.name = name
        self.members = members


_MATH = _Module("math", {name: getattr(math, name) for name in dir(math) if not name.startswith("_")})
_DATETIME = _Module("datetime", dict(_DATETIME_NAMES))
_NAMES: dict[str, Any] = {"math": _MATH, "datetime": _DATETIME, "Decimal": Decimal, "sum": sum}
_CALLABLE = (
    {id(v) for v in _MATH.members.values() if callable(v)}
    | {id(v) for v in _DATETIME_NAMES.values()}
    | {id(Decimal), id(sum)}
)


def evaluate(expression: str) -> Any:
    """The value of one expression; raises CalculatorError for anything outside the allowed language."""
    if not isinstance(expression, str):
        raise CalculatorError("the expression must be a string")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as error:
        raise CalculatorError(f"not a single expression: {error.msg}") from None
    try:
        value = _eval(tree.body)
    except CalculatorError:
        raise
    except (ArithmeticError, ValueError, TypeError, OverflowError) as error:
        raise CalculatorError(f"{type(error).__name__}: {error}") from None
    if isinstance(value, _Module):
        raise CalculatorError(f"{value.name} is a module, not a value")
    return value


def calculate(expression: str) -> str:
    """What the model is shown: `str(value)`, as upstream returns it."""
    return str(evaluate(expression))


def _eval(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or node.value is None or isinstance(node.value, (int, float, str)):
            return node.value
        raise CalculatorError(f"constant {node.value!r} is not allowed")
    if isinstance(node, ast.Name):
        if node.id not in _NAMES:
            raise CalculatorError(f"name {node.id!r} is not available (math, datetime, Decimal, sum are)")
        return _NAMES[node.id]
    if isinstance(node, ast.Attribute):
        return _attribute(_eval(node.value), node.attr)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        _check_operands(node.op, left, right)
        return _bounded(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        left = _eval(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [_eval(item) for item in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Call):
        return _call(node)
    raise CalculatorError(f"{type(node).__name__} is not allowed in a calculator expression")


def _attribute(owner: Any, name: str) -> Any:
    if name.startswith("_"):
        raise CalculatorError(f"attribute {name!r} is not allowed")
    if isinstance(owner, _Module):
        if name not in owner.members:
            raise CalculatorError(f"{owner.name}.{name} is not available")
        return owner.members[name]
    allowed_owner = isinstance(owner, (datetime.date, datetime.timedelta, datetime.timezone)) or owner in (
        datetime.date,
        datetime.datetime,
        datetime.timedelta,
        datetime.timezone,
    )
    if not allowed_owner or name not in _VALUE_ATTRIBUTES:
        raise CalculatorError(f"attribute {name!r} of {type(owner).__name__} is not available")
    return getattr(owner, name)


def _call(node: ast.Call) -> Any:
    function = _eval(node.func)
    bound_method = getattr(function, "__self__", None)
    if id(function) not in _CALLABLE and not (
        isinstance(node.func, ast.Attribute) and node.func.attr in _VALUE_ATTRIBUTES and bound_method is not None
    ):
        raise CalculatorError(f"{ast.unparse(node.func)} cannot be called")
    arguments = [_eval(argument) for argument in node.args]
    keywords = {}
    for keyword in node.keywords:
        if keyword.arg is None or keyword.arg.startswith("_"):
            raise CalculatorError("** arguments and private keywords are not allowed")
        keywords[keyword.arg] = _eval(keyword.value)
    if function in _COMBINATORIAL and any(isinstance(a, int) and abs(a) > MAX_COMBINATORIAL for a in arguments):
        raise CalculatorError(f"arguments over {MAX_COMBINATORIAL} are too large for {ast.unparse(node.func)}")
    if function is sum and arguments and isinstance(arguments[0], (list, tuple)) and len(arguments[0]) > 100_000:
        raise CalculatorError("sum over too many items")
    return _bounded(function(*arguments, **keywords))


def _check_operands(op: ast.operator, left: Any, right: Any) -> None:
    numbers = (int, float, Decimal)
    if isinstance(op, ast.Pow) and isinstance(right, numbers) and not isinstance(right, bool):
        exponent = float(right)
        if abs(exponent) > MAX_EXPONENT:
            raise CalculatorError(f"exponent {right} is larger than {MAX_EXPONENT}")
        base = abs(float(left)) if isinstance(left, (int, Decimal)) else 0.0
        if base > 1 and exponent > 0 and math.log10(base) * exponent > 100:
            raise CalculatorError("the power is too large to compute")
    if isinstance(op, ast.Mult) and (isinstance(left, (str, list, tuple)) or isinstance(right, (str, list, tuple))):
        raise CalculatorError("repeating strings or lists is not allowed")


def _bounded(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_MAGNITUDE:
        raise CalculatorError("the result is too large")
    return value
