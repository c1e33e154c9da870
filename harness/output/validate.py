"""Checking a summary read from a file against the shipped JSON Schema, before anything uses it.

``harness report`` and ``harness merge`` read summaries other people (or
other versions, or an attacker) wrote. Every field they use must be of the
type and range ``summary.schema.json`` gives, or the input is refused with
one line naming the field: a summary whose ``coverage.lines.percent`` is
``"<script>"`` or whose ``failures`` is a number never reaches the code that
draws or adds it up. The harness has no runtime dependency on a JSON Schema
library, so this checks the keywords the shipped schema uses (``type``,
``enum``, ``const``, ``required``, ``properties``, ``additionalProperties``,
``items``, ``minItems``, ``maxItems``, ``minimum``, ``maximum``,
``exclusiveMinimum``, ``$ref`` into ``$defs``); a schema using any other
keyword is a bug the tests catch.
"""

from __future__ import annotations

import math
from typing import Any

from harness.model.trace import encodable

#: Keywords this validator understands; the rest only describe.
KEYWORDS = frozenset({
    "type", "enum", "const", "required", "properties", "additionalProperties", "items", "minItems", "maxItems",
    "minimum", "maximum", "exclusiveMinimum", "$ref",
})
DESCRIPTIVE = frozenset({"$schema", "$id", "title", "description", "$defs"})

_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str) and encodable(v),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool) and -MAX_INTEGER <= v <= MAX_INTEGER,
    "number": lambda v: _finite_number(v),
}


#: The largest integer a summary may hold: what a 64-bit counter holds (a 400-digit count is no count).
MAX_INTEGER = 2**63


def _finite_number(value: Any) -> bool:
    """A JSON number the report can draw: an int or float that is a finite float (10**400 is not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


class SchemaViolation(ValueError):
    """Where (a JSON path such as ``coverage.files[0].percent``) and how a value breaks the schema."""


def validate(value: Any, schema: dict[str, Any]) -> None:
    """Raise ``SchemaViolation`` naming the first place ``value`` breaks ``schema`` (the root has ``$defs``)."""
    _check(value, schema, schema, "")


def unknown_keywords(schema: Any, found: set[str] | None = None) -> set[str]:
    """Keywords in ``schema`` this validator does not understand (for a test that keeps it honest)."""
    found = set() if found is None else found
    if isinstance(schema, dict):
        for key, sub in schema.items():
            if key not in KEYWORDS | DESCRIPTIVE:
                found.add(key)
            if key == "properties" or key == "$defs":
                for child in sub.values():
                    unknown_keywords(child, found)
            elif isinstance(sub, dict):
                unknown_keywords(sub, found)
    return found


def _check(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str) -> None:
    where = path or "the summary"
    if "$ref" in schema:
        ref = schema["$ref"]
        node: Any = root
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        _check(value, node, root, path)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[name](value) for name in types):
            raise SchemaViolation(f"{where} must be {' or '.join(types)}, got {_kind(value)}")
    if "const" in schema and not _same(value, schema["const"]):
        raise SchemaViolation(f"{where} must be {schema['const']!r}")
    if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
        raise SchemaViolation(f"{where} must be one of {', '.join(repr(o) for o in schema['enum'])}")
    if _TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaViolation(f"{where} must be at least {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaViolation(f"{where} must be at most {schema['maximum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            raise SchemaViolation(f"{where} must be more than {schema['exclusiveMinimum']}")
    if isinstance(value, dict):
        for key in value:
            if not encodable(key):
                raise SchemaViolation(f"{where} has a key with a lone surrogate")
        for key in schema.get("required", ()):
            if key not in value:
                raise SchemaViolation(f"{where} lacks {key!r}")
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if key in properties:
                _check(item, properties[key], root, sub)
            elif extra is False:
                raise SchemaViolation(f"{where} has an unknown field {str(key)[:40]!r}")
            elif isinstance(extra, dict):
                _check(item, extra, root, sub)
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            raise SchemaViolation(f"{where} must have at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise SchemaViolation(f"{where} must have at most {schema['maxItems']} items")
        if isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                _check(item, schema["items"], root, f"{path}[{index}]")


def _same(value: Any, expected: Any) -> bool:
    return type(value) is type(expected) and value == expected


def _kind(value: Any) -> str:
    if isinstance(value, str) and not encodable(value):
        return "a string with a lone surrogate"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INTEGER:
        return f"an integer past 64 bits ({len(str(abs(value)))} digits)"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )
