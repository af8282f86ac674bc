"""Mapping overrides: how decoded fields become Datastream values.

A rule belongs to one device, one device profile, or the whole tenant (in that order of
precedence) and may rename a field (its ObservedProperty name), give its unit, scale and offset
its values, ignore it, or derive a new field from others with an arithmetic expression such as
`mounting_height - distance` (names are fields of the same uplink or device variables).
Expressions are parsed with Python's `ast` and only numbers, names, `+ - * / // % **`, unary
minus and `min max abs round` are accepted, so they cannot run code.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ortspuls.ingest.fields import FieldValue
from ortspuls.ingest.units import Quantity, Unit, quantity_for, unit_from_symbol


class ExpressionError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class FieldRule:
    field: str
    ignore: bool = False
    name: str | None = None
    definition: str | None = None
    unit: dict | None = None  # STA unitOfMeasurement
    scale: float | None = None
    offset: float | None = None
    expression: str | None = None

    def apply(self, value: float | int | bool) -> float | int | bool:
        if isinstance(value, bool) or (self.scale is None and self.offset is None):
            return value
        return value * (self.scale if self.scale is not None else 1) + (self.offset or 0)


@dataclass(slots=True)
class MappedValue:
    field: str
    value: float | int | bool
    quantity: Quantity
    unit: dict  # the Datastream's unitOfMeasurement
    rule: FieldRule | None


def merge_rules(*scopes: Mapping[str, FieldRule] | None) -> dict[str, FieldRule]:
    """Rules of several scopes, the first scope winning (device, profile, tenant)."""
    merged: dict[str, FieldRule] = {}
    for scope in scopes:
        if scope:
            for field, rule in scope.items():
                merged.setdefault(field, rule)
    return merged


def quantity_of(field: str, value: Any, unit_hint: str | None, rule: FieldRule | None
                ) -> tuple[Quantity, dict]:
    q = quantity_for(field, value, unit_hint)
    unit = q.unit.as_sta()
    if rule is not None:
        if rule.unit:
            unit = dict(rule.unit)
            parsed = unit_from_symbol(unit.get("symbol")) or unit_from_symbol(
                (unit.get("definition") or "").removeprefix("ucum:"))
            q = q.with_unit(parsed or Unit("custom", unit.get("name") or "", unit.get("symbol")))
        if rule.name:
            q = Quantity(q.slug if q.known else rule.name, rule.name, q.name_en if q.known
                         else rule.name, q.unit, q.boolean, known=True)
    return q, unit


def apply_rules(fields: dict[str, FieldValue], rules: Mapping[str, FieldRule],
                variables: Mapping[str, Any] | None = None) -> tuple[list[MappedValue], list[str]]:
    """Mapped values of one uplink, and the problems met (for the device status)."""
    out: list[MappedValue] = []
    problems: list[str] = []
    values: dict[str, float | int | bool] = {}
    for field, fv in fields.items():
        rule = rules.get(field)
        value = rule.apply(fv.value) if rule is not None else fv.value
        values[field] = value
        if rule is not None and (rule.ignore or rule.expression):
            continue
        q, unit = quantity_of(field, value, fv.unit_hint, rule)
        out.append(MappedValue(field, value, q, unit, rule))
    derived = [r for r in rules.values() if r.expression and not r.ignore]
    if derived:
        names: dict[str, Any] = {}
        for key, value in (variables or {}).items():
            number = _number(value)
            if number is not None:
                names[key] = number
        names.update(values)
        for rule in derived:
            try:
                result = evaluate(rule.expression, names)
            except _Missing:
                continue  # an input is not in this uplink (another port, a heartbeat)
            except ExpressionError as exc:
                problems.append(f"{rule.field}: {exc}")
                continue
            q, unit = quantity_of(rule.field, result, None, rule)
            out.append(MappedValue(rule.field, result, q, unit, rule))
    return out, problems


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


# ---------------------------------------------------------------------------------------------
# Expressions


class _Missing(Exception):
    pass


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
           ast.Pow: operator.pow}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_FUNCTIONS = {"min": min, "max": max, "abs": abs, "round": round}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name) and "__" not in node.id:
        return node.id
    if isinstance(node, ast.Attribute) and "__" not in node.attr:
        return f"{_dotted(node.value)}.{node.attr}"
    raise ExpressionError("only field names, numbers and + - * / ** min max abs round "
                          "are allowed")


def _check(node: ast.AST) -> None:
    match node:
        case ast.Expression(body=body):
            _check(body)
        case ast.Constant(value=value):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ExpressionError(f"{value!r} is not a number")
        case ast.Name() | ast.Attribute():
            _dotted(node)
        case ast.BinOp(left=left, op=op, right=right):
            if type(op) not in _BINARY:
                raise ExpressionError(f"operator {type(op).__name__} is not allowed")
            _check(left)
            _check(right)
        case ast.UnaryOp(op=op, operand=operand):
            if type(op) not in _UNARY:
                raise ExpressionError(f"operator {type(op).__name__} is not allowed")
            _check(operand)
        case ast.Call(func=ast.Name(id=fname), args=args, keywords=[]):
            if fname not in _FUNCTIONS:
                raise ExpressionError(f"function {fname!r} is not allowed; use min, max, "
                                      "abs or round")
            for arg in args:
                _check(arg)
        case _:
            raise ExpressionError("only field names, numbers and + - * / ** min max abs "
                                  "round are allowed")


@lru_cache(maxsize=1024)
def compile_expression(text: str) -> ast.Expression:
    """Parse and check an expression once; raises ExpressionError for anything else."""
    if not text or len(text) > 500:
        raise ExpressionError("an expression needs 1 to 500 characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot read the expression {text!r}: {exc.msg}") from None
    _check(tree)
    return tree


def evaluate(text: str, names: Mapping[str, Any]) -> float | int:
    tree = compile_expression(text)
    try:
        result = _eval(tree.body, names)
    except (ZeroDivisionError, OverflowError, ValueError, TypeError) as exc:
        raise ExpressionError(f"cannot compute {text!r}: {exc}") from None
    if isinstance(result, float) and not math.isfinite(result):
        raise ExpressionError(f"{text!r} gave {result}")
    return result


def _eval(node: ast.AST, names: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name | ast.Attribute):
        key = _dotted(node)
        if key not in names:
            raise _Missing(key)
        value = names[key]
        return int(value) if isinstance(value, bool) else value
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, names), _eval(node.right, names)
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise ValueError("exponent too large")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, names))
    if isinstance(node, ast.Call):
        return _FUNCTIONS[node.func.id](*[_eval(a, names) for a in node.args])  # type: ignore[attr-defined]
    raise ExpressionError("unsupported expression")
