"""Checking a pack's shape against ``governance/pack_schema.json`` (JSON Schema 2020-12).

jsonschema's messages are written for programmers; the readers here are legal
teams, so the common ones are rephrased and unknown fields are reported at
their own line rather than at the entry that contains them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from governance.packs.source import NodePath, PackError, PackSource

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "pack_schema.json"

_TYPE_WORDS = {
    "string": "text (put it in quotes)",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping of keys to values",
    "null": "empty",
}


@cache
def pack_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(pack_schema())


def _describe(error: ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    expected = schema.get("x-expected")
    instance = error.instance
    # The failed keyword's value in the schema: any JSON, and set on every error iter_errors yields.
    keyword: Any = error.validator_value
    if expected and error.validator in {"pattern", "type"}:
        return f"{instance!r} is not {expected}"
    if error.validator == "type":
        types: list[str] = keyword if isinstance(keyword, list) else [keyword]
        return f"{instance!r} is not {' or '.join(_TYPE_WORDS.get(t, t) for t in types)}"
    if error.validator == "enum":
        return f"{instance!r} is not one of: {', '.join(map(str, keyword))}"
    if error.validator == "const":
        return f"must be {keyword!r}, not {instance!r}"
    if error.validator == "minimum":
        return f"{instance!r} is less than the minimum of {keyword}"
    if error.validator == "minLength":
        return "must not be empty"
    if error.validator == "maxLength":
        return f"is longer than {keyword} characters"
    if error.validator == "minItems":
        return f"needs at least {keyword} item(s)"
    return error.message


def _unknown_fields(
    source: PackSource, error: ValidationError, instance: dict[str, Any], path: NodePath
) -> list[PackError]:
    schema = error.schema if isinstance(error.schema, dict) else {}
    allowed = sorted(schema.get("properties", {}))
    unknown = [key for key in instance if key not in allowed]
    return [
        source.error((*path, str(key)), f"unknown field {key!r}; expected one of: {', '.join(allowed)}")
        for key in unknown
    ]


def _duplicate_items(source: PackSource, items: list[Any], path: NodePath) -> list[PackError]:
    seen: dict[str, int] = {}
    errors = []
    for index, item in enumerate(items):
        key = json.dumps(item, sort_keys=True, default=str)
        if key in seen:
            first_line = source.line_of((*path, seen[key]))
            errors.append(source.error((*path, index), f"{item!r} is listed twice (first at line {first_line})"))
        else:
            seen[key] = index
    return errors


def structure_errors(source: PackSource) -> list[PackError]:
    """Every place where the pack's shape differs from the schema."""
    errors: list[PackError] = []
    for error in _validator().iter_errors(source.data):
        path: NodePath = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            errors += _unknown_fields(source, error, error.instance, path)
        elif error.validator == "uniqueItems" and isinstance(error.instance, list):
            errors += _duplicate_items(source, error.instance, path)
        else:
            errors.append(source.error(path, _describe(error)))
    return errors
