"""Checks protocol/schema.json: hand-written example lines, and every line of the golden cases.

Run from the package root: python3 -m pytest Tests/Golden (needs the `jsonschema` package).
"""

import json
import pathlib

import jsonschema
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "protocol" / "schema.json").read_text())
CASES = pathlib.Path(__file__).resolve().parent / "cases"


def validator(part=None):
    schema = SCHEMA if part is None else {"$defs": SCHEMA["$defs"], "$ref": f"#/$defs/{part}"}
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


REQUEST = validator("request")
RESPONSE = validator("response")
ANY = validator()

GOOD_REQUESTS = [
    {"id": 1, "op": "hello"},
    {"id": "u", "op": "unlock", "name": "diary", "cipher": "biographer", "secret": "hunter2"},
    {"id": 2, "op": "unlock", "name": "d", "cipher": "biographer", "secret": {"$bin": "aHVudGVyMg=="}},
    {"id": 2, "op": "unlock", "name": "f", "cipher": "fernet", "secret": ["k1", "k2"], "ttl": 60},
    {"id": 2, "op": "unlock", "name": "a", "cipher": "age", "secret": {"identities": ["AGE-SECRET-KEY-1X"]}},
    {"id": 2, "op": "unlock", "name": "o", "cipher": "openssl", "secret": "pw", "iter": 100000},
    {"id": 3, "op": "forget", "name": "diary"},
    {"id": 4, "op": "count", "files": []},
    {"id": 4, "op": "count", "files": ["a.txt", {"$bin": "/w=="}, {"$str": "Yf8="}], "terms": ["é", {"$bin": "AA=="}],
     "key": "diary", "ignore_case": True, "whole_word": False, "offsets": True, "max_offsets": 10, "context": 2,
     "words": True, "ordered": True},
    {"id": 4, "op": "count", "files": ["x"], "cipher": "biographer", "secret": "pw", "future_option": 1},
    {"id": 4, "op": "count", "files": ["x"], "batch": 256, "compact": True},
    {"id": 4, "op": "count", "files": ["a"], "cipher": "auto", "keys": ["k1", "k2"], "iter": 100000000,
     "context": 100},
    {"id": 5, "op": "cancel", "target": 4},
    {"id": 5, "op": "cancel", "target": -1},  # names nothing: ok
    {"id": 6, "op": "stats"},
    {"id": 7, "op": "shutdown"},
]

BAD_REQUESTS = [
    {"op": "hello"},  # no id
    {"id": -1, "op": "hello"},  # ids are unsigned
    {"id": 1.5, "op": "hello"},
    {"id": 1, "op": "launch"},
    {"id": 1, "op": "count"},  # files is required
    {"id": 1, "op": "count", "files": "a.txt"},
    {"id": 1, "op": "count", "files": [1]},
    {"id": 1, "op": "count", "files": [], "terms": [""]},
    {"id": 1, "op": "count", "files": [{"$bin": "not base64!"}]},
    {"id": 1, "op": "count", "files": [], "max_offsets": -1},
    {"id": 1, "op": "count", "files": [], "ordered": "yes"},
    {"id": 1, "op": "count", "files": [], "context": 101},
    {"id": 1, "op": "count", "files": [], "iter": 0},
    {"id": 1, "op": "count", "files": [], "iter": 100000001},
    {"id": 1, "op": "count", "files": [], "keys": "k"},
    {"id": 1, "op": "count", "files": [], "max_offsets": 2147483648},
    {"id": 1, "op": "count", "files": [], "compact": 1},
    {"id": 1, "op": 7},
    {"id": 1, "op": "cancel", "target": 1.5},
    {"id": 1, "op": "unlock", "name": "", "cipher": "plain"},
    {"id": 1, "op": "unlock", "name": "d", "secret": "x"},  # cipher is required
    {"id": 1, "op": "forget"},
    {"id": 1, "op": "cancel"},
]

GOOD_RESPONSES = [
    {"id": 1, "type": "hello", "protocol": 1, "server": "cryptcount", "version": "0.1.0",
     "ciphers": ["plain", "biographer"], "ops": ["hello", "count"], "workers": 2, "max_frame": 16777216},
    {"id": "u", "type": "ok"},
    {"id": 6, "type": "stats", "uptime_us": 5, "requests": 1, "files": 0, "bytes_read": 0, "bytes_plain": 0,
     "errors": 0, "in_flight": 1, "workers": 2,
     "cache": {"entries": 0, "bytes": 0, "limit": 0, "hits": 0, "misses": 0}},
    {"id": 4, "type": "file", "index": 0, "path": "a.txt", "counts": [3, 0], "bytes": 120, "cached": False},
    {"id": 4, "type": "file", "index": 1, "path": {"$bin": "/w=="}, "counts": [1], "bytes": 9, "cached": True,
     "words": 2, "offsets": [[4]], "snippets": [["a b"]], "truncated": False},
    {"id": 4, "type": "file", "index": 2, "path": {"$str": "Yf8="},
     "error": {"code": "not_found", "message": "no such file"}},
    {"id": 4, "type": "done", "files": 3, "failed": 1, "skipped": 0, "counts": [4, 0], "elapsed_us": 17,
     "cancelled": False},
    {"id": 4, "type": "done", "files": 0, "failed": 0, "skipped": 2, "counts": [], "words": 0, "elapsed_us": 1,
     "cancelled": True},
    {"id": 4, "type": "file", "index": 0, "path": "a", "counts": [1], "bytes": 1, "cached": False,
     "cipher": "fernet"},  # "cipher": "auto"
    {"id": 4, "type": "file", "index": 1, "path": "b", "error": {"code": "decrypt_failed", "message": "x"},
     "cipher": "age"},
    {"id": 4, "type": "files", "results": [[0, [3, 0], 120, False], [2, [0, 0], 0, True, 0],
                                           {"id": 4, "type": "file", "index": 1, "path": "b",
                                            "error": {"code": "not_found", "message": "x"}}]},  # "compact"
    {"id": None, "type": "error", "code": "bad_msgpack", "message": "not one MessagePack value"},
    {"id": 9, "type": "error", "code": "unknown_op", "message": "unknown op 'launch'"},
]

BAD_RESPONSES = [
    {"id": 1, "type": "ok", "secret": "x"},  # responses carry no extra keys
    {"id": 1, "type": "welcome"},
    {"type": "ok"},  # id is always present (null when unknown)
    {"id": 4, "type": "file", "index": 0, "path": "a", "counts": [1], "bytes": 1},  # cached missing
    {"id": 4, "type": "file", "index": 0, "path": "a", "error": {"code": "on_fire", "message": "x"}},
    {"id": 4, "type": "file", "index": 0, "path": "a", "counts": [1], "bytes": 1, "cached": False,
     "error": {"code": "not_found", "message": "x"}},  # both shapes at once
    {"id": 4, "type": "done", "files": 1, "failed": 0, "skipped": 0, "counts": [1], "cancelled": False},
    {"id": 1, "type": "error", "code": "oops", "message": "x"},
    {"id": 4, "type": "file", "index": 0, "path": "a", "counts": [1], "bytes": 1, "cached": False, "cipher": None},
    {"id": 4, "type": "file", "index": 0, "path": "a", "counts": [1], "bytes": 1, "cached": False, "ciphers": "x"},
    {"id": 4, "type": "files", "results": [[0, [3], 120]]},  # compact: cached missing
    {"id": 4, "type": "files", "results": [[0, [3], 120, False, 1, 2]]},  # compact: one too many
    {"id": 4, "type": "files", "results": [[0, [3], 120, False, 1, 1, 1]]},  # (the stand-in keeps 6)
    {"id": 4, "type": "files", "results": [[0, 3, 120, False]]},  # compact: counts not an array
    {"id": 4, "type": "files", "results": [["a", [3], 120, False]]},  # compact: index not an integer
    {"id": 1, "type": "hello", "protocol": 2, "server": "cryptcount", "version": "1", "ciphers": [], "ops": [],
     "workers": 1, "max_frame": 1},
]


@pytest.mark.parametrize("line", GOOD_REQUESTS, ids=lambda v: json.dumps(v)[:60])
def test_good_requests(line):
    REQUEST.validate(line)
    ANY.validate(line)


@pytest.mark.parametrize("line", BAD_REQUESTS, ids=lambda v: json.dumps(v)[:60])
def test_bad_requests(line):
    assert not REQUEST.is_valid(line)


@pytest.mark.parametrize("line", GOOD_RESPONSES, ids=lambda v: json.dumps(v)[:60])
def test_good_responses(line):
    RESPONSE.validate(line)
    ANY.validate(line)


@pytest.mark.parametrize("line", BAD_RESPONSES, ids=lambda v: json.dumps(v)[:60])
def test_bad_responses(line):
    assert not RESPONSE.is_valid(line)


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


# --- golden cases --------------------------------------------------------------------------

# Request errors that say the request itself was malformed: such request lines are meant to
# fail the schema, so they are not checked.
MALFORMED = {"bad_request", "bad_secret", "unknown_op", "bad_msgpack", "bad_frame", "frame_too_large"}


def golden_cases():
    return sorted(p for p in CASES.iterdir() if p.is_dir()) if CASES.is_dir() else []


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def denormalise(response):
    """Puts back what the golden runner drops, so normalised lines validate as responses."""
    if isinstance(response, dict):
        if response.get("type") == "done":
            response = {**response, "elapsed_us": 0}
        if response.get("type") == "stats":
            response = {**response, "uptime_us": 0}
    return response


def test_there_are_golden_cases():
    assert len(golden_cases()) >= 20


@pytest.mark.parametrize("case", golden_cases(), ids=lambda p: p.name)
def test_golden_responses_match_schema(case):
    expected = case / "expected.jsonl"
    assert expected.exists(), f"{case.name}: no expected.jsonl"
    for n, response in enumerate(read_jsonl(expected), 1):
        errors = sorted(RESPONSE.iter_errors(denormalise(response)), key=str)
        assert not errors, f"{case.name}/expected.jsonl line {n}: {errors[0].message}"


@pytest.mark.parametrize("case", golden_cases(), ids=lambda p: p.name)
def test_golden_requests_match_schema(case):
    requests = case / "request.jsonl"
    if not requests.exists():
        pytest.skip("raw request.bin")
    responses = read_jsonl(case / "expected.jsonl")
    malformed_ids = {json.dumps(r.get("id")) for r in responses
                     if isinstance(r, dict) and r.get("type") == "error" and r.get("code") in MALFORMED}
    for n, request in enumerate(read_jsonl(requests), 1):
        ident = request.get("id") if isinstance(request, dict) else None
        readable_id = isinstance(ident, str) or (isinstance(ident, int) and not isinstance(ident, bool) and ident >= 0)
        if not readable_id or json.dumps(ident) in malformed_ids:
            continue  # sent malformed on purpose
        errors = sorted(REQUEST.iter_errors(request), key=str)
        assert not errors, f"{case.name}/request.jsonl line {n}: {errors[0].message}"


# --- schema_check.py, the check every suite runs on the responses it reads --------------------

import sys  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import schema_check  # noqa: E402

STAND_IN_CASES = GOOD_RESPONSES + BAD_RESPONSES + [
    {"id": 4, "type": "file", "index": 0, "path": {"$bin": "not base64"}, "counts": [1], "bytes": 1, "cached": False},
    {"id": 4, "type": "file", "index": 0, "path": "a", "counts": [1, -7], "bytes": 1, "cached": False},
    {"id": 4, "type": "file", "index": 0, "path": "a", "counts": [5, 9, 1, 0], "bytes": 123456, "cached": False,
     "offsets": [[1, 2], [3, -1]], "truncated": False},
    {"id": 4, "type": "files", "results": []},
    {"id": 4, "type": "files", "results": [{"id": 4, "type": "file", "index": 0, "path": "a", "counts": [1],
                                            "bytes": 1, "cached": False, "cipher": 5}]},
    {"id": 1, "type": "hello", "protocol": 1, "server": "cryptcount", "version": "1", "ciphers": [], "ops": [],
     "workers": 0, "max_frame": 1},
    {"id": 2 ** 64 - 1, "type": "ok"},
]


@pytest.mark.parametrize("line", STAND_IN_CASES, ids=lambda v: json.dumps(v)[:60])
def test_the_stand_in_is_valid_exactly_when_the_response_is(line):
    assert (not schema_check.response_errors(line, rendered=True)) == RESPONSE.is_valid(line)


def test_python_values_are_rendered_as_json_lines():
    value = {"id": "x", "type": "file", "index": 0, "path": b"\xff", "counts": [1], "bytes": 1, "cached": False}
    assert schema_check.to_json_lines(value)["path"] == {"$bin": "/w=="}
    assert schema_check.to_json_lines(b"\xff".decode("utf-8", "surrogateescape")) == {"$str": "/w=="}
    assert not schema_check.response_errors(value)
    assert schema_check.response_errors({**value, "cipher": None})
