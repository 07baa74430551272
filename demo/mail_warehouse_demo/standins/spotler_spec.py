"""The Spotler Mail+ API as its vendor describes it (Swagger 1.2, `spotler_api.json`, copied from
../shared/reference/spotler/api.json): operations with their parameters, and models to check answers against.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SPEC_PATH = Path(__file__).with_name("spotler_api.json")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # as in the spec: /mailing/{encryptedMailingId}/opens
    nickname: str
    response_type: str  # a model name, or "array"
    items_type: str | None  # the model of an array's items
    parameters: tuple[dict, ...]

    @property
    def pattern(self) -> re.Pattern:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path)
        return re.compile(f"^{regex}$")

    @property
    def query_parameters(self) -> dict[str, dict]:
        return {p["name"]: p for p in self.parameters if p["paramType"] == "query"}

    @property
    def is_paged(self) -> bool:
        return "paging" in models().get(self.response_type, {}).get("properties", {})


@cache
def _resources() -> list[dict]:
    return json.loads(SPEC_PATH.read_text())


@cache
def operations() -> tuple[Operation, ...]:
    found = []
    for resource in _resources():
        for api in resource["apis"]:
            for op in api["operations"]:
                items = op.get("items") or {}
                found.append(
                    Operation(
                        op["method"],
                        api["path"],
                        op["nickname"],
                        op["type"],
                        items.get("$ref") or items.get("type"),
                        tuple(op.get("parameters", [])),
                    )
                )
    return tuple(found)


@cache
def models() -> dict[str, dict]:
    merged: dict[str, dict] = {}
    for resource in _resources():
        merged.update(resource.get("models", {}))
    return merged


def find_operation(method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
    """The operation serving a path; literal segments win over `{parameters}` (/mailing/x vs /form/list)."""
    candidates = []
    for op in operations():
        if op.method != method:
            continue
        match = op.pattern.match(path)
        if match:
            candidates.append((op.path.count("{"), op, match.groupdict()))
    if not candidates:
        return None
    candidates.sort(key=lambda c: c[0])
    return candidates[0][1], candidates[0][2]


# --- checking answers against the models -------------------------------------------------------------


def _is_iso_datetime(value: str) -> bool:
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return True
    except ValueError:
        return False


def check_value(value, schema: dict, where: str) -> list[str]:
    """Problems with one value against a property schema of the spec (required fields, types, enums)."""
    if value is None:
        return []
    ref = schema.get("$ref")
    kind = schema.get("type")
    if ref == "date-time":  # Contact.created, ContactBounce.date, FormResult.submittedAt: epoch millis
        return (
            []
            if isinstance(value, int) or (isinstance(value, str) and _is_iso_datetime(value))
            else [f"{where}: {value!r} is not a date-time"]
        )
    if ref and ref in models():
        if "enum" in schema:
            return [] if value in schema["enum"] else [f"{where}: {value!r} not in {schema['enum']}"]
        return check_model(value, ref, where)
    if ref and ref.startswith("Map["):
        return [] if isinstance(value, dict) else [f"{where}: expected an object"]
    problems = []
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: expected a string, got {type(value).__name__}"]
        if schema.get("format") == "date-time" and not _is_iso_datetime(value):
            problems.append(f"{where}: {value!r} is not ISO 8601")
    elif kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{where}: expected an integer, got {type(value).__name__}"]
    elif kind == "boolean":
        if not isinstance(value, bool):
            return [f"{where}: expected a boolean, got {type(value).__name__}"]
    elif kind == "array":
        if not isinstance(value, list):
            return [f"{where}: expected an array"]
        for i, item in enumerate(value):
            problems += check_value(item, schema.get("items", {}), f"{where}[{i}]")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} not in {schema['enum']}")
    return problems


def check_model(value, model_name: str, where: str = "$") -> list[str]:
    model = models()[model_name]
    if not isinstance(value, dict):
        return [f"{where}: expected a {model_name} object"]
    problems = [
        f"{where}: {model_name} lacks required {field!r}"
        for field in model.get("required", [])
        if value.get(field) is None
    ]
    for field, item in value.items():
        schema = model["properties"].get(field)
        if schema is None:
            problems.append(f"{where}: {field!r} is not a property of {model_name}")
        else:
            problems += check_value(item, schema, f"{where}.{field}")
    return problems


def check_response(operation: Operation, body) -> list[str]:
    if operation.response_type == "array":
        return check_value(body, {"type": "array", "items": {"$ref": operation.items_type}}, "$")
    return check_model(body, operation.response_type)
