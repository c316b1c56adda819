"""Checks responses against protocol/schema.json, wherever a test reads them.

Every harness that talks to `cryptcount serve` (the golden runner, the Swift end-to-end
harness, Tests/python/cc_harness.py, test_protocol_v1.py, the driver's tests) passes each
response it receives through here, so a response field the schema does not allow fails a test
at once, whichever test happened to provoke it. (Validating only the checked-in golden
`expected.jsonl` lines missed the `cipher` field of `"cipher": "auto"` results: no golden case
used `auto`, and the suites that did never looked at the schema.)

As a module: `response_errors(value)` takes a response as decoded by msgpack-python
(raw=False; bin as bytes; a str that is not UTF-8 as surrogate escapes) and returns a list of
messages (empty when valid). As a program: `python3 schema_check.py` reads JSON Lines (the
rendering of protocol/json-lines.md, as `cryptcount unframe` writes it) on stdin, one response
per line, prints one line per invalid response and exits 1 if there was any (exit 3: the
`jsonschema` package is missing).
"""

from __future__ import annotations

import base64
import json
import pathlib
import re
import sys
from typing import Any, List

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "protocol" / "schema.json"

try:
    import jsonschema
except ImportError:  # pragma: no cover - make deps installs it
    jsonschema = None

_validators: dict = {}


def validator(part: str = "response"):
    """A Draft 2020-12 validator for `#/$defs/<part>` (compiled once)."""
    if jsonschema is None:
        raise RuntimeError("the jsonschema package is missing (make deps installs it)")
    v = _validators.get(part)
    if v is None:
        schema = json.loads(SCHEMA_PATH.read_text())
        v = jsonschema.Draft202012Validator(
            {"$defs": schema["$defs"], "$ref": f"#/$defs/{part}"}, format_checker=jsonschema.FormatChecker()
        )
        _validators[part] = v
    return v


def to_json_lines(value: Any) -> Any:
    """A msgpack-python value in the JSON Lines rendering the schema describes."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bin": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:  # surrogate escapes: a str whose bytes are not UTF-8
            return {"$str": base64.b64encode(value.encode("utf-8", "surrogateescape")).decode()}
    if isinstance(value, (list, tuple)):
        return [to_json_lines(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: to_json_lines(v) for k, v in value.items()}
        return {"$map": [[to_json_lines(k), to_json_lines(v)] for k, v in value.items()]}
    return value


_KEPT = {"type", "code", "server", "cipher"}  # keys whose string values the schema constrains
_BASE64 = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")


def skeleton(doc: Any, key: str = "") -> Any:
    """A small stand-in for `doc` that the schema accepts exactly when it accepts `doc`.

    jsonschema takes about a millisecond per response here, and suites read hundreds of
    thousands of them, most differing only in numbers, paths and array lengths. The response
    schema constrains types, the strings under `type`, `code`, `server` and `cipher` (consts and
    enums), `$bin`/`$str` strings (base64), integers (minimum 0 or 1, const 1) and arrays
    (minItems, items). So the stand-in keeps those strings, maps other strings to "" or "s",
    integers above 2 to 2 and below -1 to -1, and keeps one array element per distinct element
    shape. A compact file result is a tuple (`prefixItems`, at most 5 elements), so arrays of
    up to 5 elements are kept whole (equal-shaped elements stay in place) and a longer one keeps
    at least 6 (its first element repeated: no array in the schema asks for unique items).
    Equal stand-ins share one validation.
    """
    if isinstance(doc, bool) or doc is None or isinstance(doc, float):
        return doc
    if isinstance(doc, int):
        return doc if -1 <= doc <= 2 else (2 if doc > 2 else -1)
    if isinstance(doc, str):
        if key in _KEPT:
            return doc
        if key in ("$bin", "$str"):
            return "AAAA" if _BASE64.match(doc) else "!"
        return "s" if doc else ""
    if isinstance(doc, list):
        if len(doc) <= 5:
            return [skeleton(item) for item in doc]
        out, seen = [], set()
        for item in doc:
            s = skeleton(item)
            k = json.dumps(s)
            if k not in seen:
                seen.add(k)
                out.append(s)
        return out + out[:1] * (6 - len(out))
    if isinstance(doc, dict):
        return {k: skeleton(v, k) for k, v in doc.items()}
    return doc


_memo: dict = {}


def _short(error) -> str:
    """The validator's message without the (stand-in) instance it repeats."""
    if error.validator in ("oneOf", "anyOf"):
        return f"matches none of the shapes allowed ({error.validator})" + (
            f"; e.g. {error.context[0].message}" if error.context else "")
    return error.message


def response_errors(value: Any, rendered: bool = False) -> List[str]:
    """Why `value` (one response) does not match the schema; empty when it does."""
    doc = value if rendered else to_json_lines(value)
    stand_in = skeleton(doc)
    key = json.dumps(stand_in)
    found = _memo.get(key)
    if found is None:
        errors = sorted(validator("response").iter_errors(stand_in), key=lambda e: list(e.absolute_path))
        found = [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {_short(e)}" for e in errors[:3]]
        if len(_memo) > 20000:
            _memo.clear()
        _memo[key] = found
    if not found:
        return []
    shown = json.dumps(doc, ensure_ascii=False)
    if len(shown) > 300:
        shown = shown[:300] + "..."
    return [f"{m} in {shown}" for m in found]


def check_response(value: Any) -> None:
    """Raises AssertionError when `value` does not match the schema."""
    errors = response_errors(value)
    assert not errors, "response does not match protocol/schema.json: " + "; ".join(errors)


def main() -> int:
    if jsonschema is None:
        print("the jsonschema package is missing (make deps installs it)", file=sys.stderr)
        return 3
    bad = 0
    for n, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError as exc:
            print(f"line {n}: not JSON: {exc}")
            bad += 1
            continue
        for message in response_errors(doc, rendered=True):
            print(f"line {n}: {message}")
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
