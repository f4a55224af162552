"""The corpus of AWS's own event shapes (tests/corpus, each entry citing its sources) and the
structural comparison that pins devstack's events and the samples in events/ to it: the same
keys at every level, the same JSON types, the same formats of timestamps and ids.

An entry's `shape` says what the comparison cannot see from one example: `optional` paths may
be absent, `nullable` ones null, `free` paths are maps whose keys are data (headers, claims,
their values are compared by JSON type, or as objects with one of the example values' shapes),
`images` are DynamoDB attribute maps, `opaque` paths are not compared (an event's `detail`
is ours), `json` paths are strings holding JSON compared
with `body`'s shape. Paths are dotted; `[]` is any list element, `*` any key of a free map."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent / "corpus"
# DynamoDB's attribute value types, as images carry them.
ATTRIBUTE_TYPES = {"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"}

FORMATS = [
    ("uuid", re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")),
    ("hex32", re.compile(r"[0-9a-f]{32}")),
    ("digits", re.compile(r"[0-9]+")),
    ("time, seconds, Z", re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")),
    ("time, milliseconds, Z", re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")),
    ("dd/Mon/yyyy:HH:MM:SS +0000", re.compile(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000")),
    ("ARN", re.compile(r"arn:aws:[a-z0-9-]+:[a-z0-9-]*:\d{12}:.+")),
]


def entry(name: str) -> dict[str, Any]:
    return json.loads((CORPUS / f"{name}.json").read_text())


def entries() -> list[str]:
    return sorted(path.stem for path in CORPUS.glob("*.json"))


def kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    for name, pattern in FORMATS:
        if pattern.fullmatch(value):
            return f"string ({name})"
    return "string"


def differences(sample: Any, names: list[str]) -> list[str]:
    """How `sample` differs from the corpus entries `names`: it must have the shape of the
    first, and each of its `Records` the shape of a record of any of them."""
    models = [entry(name) for name in names]
    model = json.loads(json.dumps(models[0]["event"]))
    if isinstance(model, dict) and "Records" in model:
        model["Records"] = [r for m in models for r in m["event"]["Records"]]
    found: list[str] = []
    _compare(sample, model, models[0]["shape"], "", found)
    return found


def _compare(sample: Any, model: Any, shape: dict[str, Any], path: str, found: list[str]) -> None:
    where = path or "(top)"
    if path in shape.get("opaque", []):
        return
    if path in shape.get("json", []):
        if not isinstance(sample, str):
            found.append(f"{where}: {kind(sample)}, not a string of JSON")
            return
        try:
            inner = json.loads(sample)
        except ValueError:
            found.append(f"{where}: not JSON")
            return
        _compare(inner, json.loads(model), shape.get("body", {}), "", found)
        return
    if sample is None and path in shape.get("nullable", []):
        return
    if kind(sample) != kind(model) and not (kind(model) == "string" and isinstance(sample, str)):
        found.append(f"{where}: {kind(sample)} where AWS sends {kind(model)}")
        return
    if isinstance(model, list):
        if not model:
            return
        for i, item in enumerate(sample):
            found.extend(f"[{i}] {d}" for d in _closest(item, model, shape, f"{path}[]"))
        return
    if not isinstance(model, dict):
        return
    if path in shape.get("images", []):
        for key, value in sample.items():
            if not (isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ATTRIBUTE_TYPES):
                found.append(f"{path}.{key}: {value!r} is not a DynamoDB attribute value")
        return
    if path in shape.get("free", []):
        examples = list(model.values())
        for key, value in sample.items():
            if not examples:
                continue
            if isinstance(value, dict):
                found.extend(f"{path}.{key}: {d}" for d in _closest(value, examples, shape, f"{path}.*"))
            elif not any(type(value) is type(e) for e in examples):
                found.append(f"{path}.{key}: {kind(value).split(' ')[0]} where AWS sends "
                             f"{kind(examples[0]).split(' ')[0]}")
        return
    for key in sample.keys() - model.keys():
        found.append(f"{_join(path, key)}: not a key AWS sends")
    for key in model.keys() - sample.keys():
        if _join(path, key) not in shape.get("optional", []):
            found.append(f"{_join(path, key)}: missing")
    for key in model.keys() & sample.keys():
        _compare(sample[key], model[key], shape, _join(path, key), found)


def _closest(sample: Any, candidates: list[Any], shape: dict[str, Any], path: str) -> list[str]:
    """No differences if `sample` has the shape of one of `candidates`; else those from the
    candidate it is closest to."""
    attempts = []
    for candidate in candidates:
        attempt: list[str] = []
        _compare(sample, candidate, shape, path, attempt)
        if not attempt:
            return []
        attempts.append(attempt)
    return min(attempts, key=len)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
