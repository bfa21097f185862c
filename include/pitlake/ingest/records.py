"""The records of a landing file, byte for byte: the one definition of "a record in landing" that the
ingestion jobs read through Spark and count independently on the driver.

A landing file is JSON Lines. Its bytes are split into physical lines at ``\\r\\n``, ``\\r`` or ``\\n``
(a UTF-8 byte order mark at the start of a file is dropped); a line that holds only whitespace is
not a record. Every other line is one or more records:

- a line whose bytes are not UTF-8 is one record with defect ``invalid_utf8``; its text keeps the
  bad bytes as ``\\xNN`` escapes (nothing is replaced by U+FFFD);
- a line of one or more complete JSON values separated by whitespace is one record per value, each
  with its own text (``{"a":1}{"b":2}`` is two records);
- a line that starts with a complete JSON value followed by something that is not one is one record
  with defect ``trailing_garbage`` (the whole line: where the garbage starts is not a record
  boundary anyone can vouch for);
- a line that uses ``NaN``, ``Infinity`` or ``-Infinity`` (not JSON) is one record with defect
  ``non_finite_number``;
- a line that does not start with a JSON value is one record with defect ``malformed_record`` (also
  what Spark's lenient parser would accept: single quotes, comments, leading zeros);
- a value that is not a JSON object is a record with defect ``not_an_object``; an object whose field
  has the wrong JSON type for the table's schema (``"customer_id": 123``, ``"amount": "12"``) is a
  record with defect ``wrong_type`` (Spark would otherwise turn the number into a string silently).

This module imports only the standard library: :func:`record_batches` runs inside Spark's Python
workers (``mapInArrow``) on the engine or a cluster's executors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

BOM = b"\xef\xbb\xbf"
LINE_BREAK = re.compile(rb"\r\n|\r|\n")
WHITESPACE = re.compile(r"[ \t\n\r]*")
# The JSON type each schema type accepts ("string" fields take strings, "number" fields ints or floats,
# "boolean" fields true or false).
JSON_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "number": (int, float), "boolean": (bool,)}
# The columns Spark reads records into (``mapInArrow``'s output schema).
RECORD_SCHEMA = "source_file string, line_number int, record_in_line int, line string, defect string"


class _NonFinite(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonFinite(name)


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


@dataclass(frozen=True)
class Record:
    line_number: int  # 1-based physical line
    record_in_line: int  # 1-based
    text: str
    defect: str | None


def _type_defect(value: Any, field_types: Mapping[str, str]) -> str | None:
    if not isinstance(value, dict):
        return "not_an_object"
    for name, kind in field_types.items():
        v = value.get(name)
        if v is None:
            continue
        if (isinstance(v, bool) and kind != "boolean") or not isinstance(v, JSON_TYPES[kind]):
            return "wrong_type"
    return None


def _line_records(line_number: int, raw: bytes, field_types: Mapping[str, str]) -> list[Record]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return [Record(line_number, 1, raw.decode("utf-8", "backslashreplace"), "invalid_utf8")]
    values: list[tuple[str, Any]] = []
    pos = WHITESPACE.match(text, 0).end()  # type: ignore[union-attr]
    while pos < len(text):
        try:
            value, end = _DECODER.raw_decode(text, pos)
        except _NonFinite:
            return [Record(line_number, 1, text, "non_finite_number")]
        except ValueError:
            if not values:
                return [Record(line_number, 1, text, "malformed_record")]
            return [Record(line_number, 1, text, "trailing_garbage")]
        values.append((text[pos:end], value))
        pos = WHITESPACE.match(text, end).end()  # type: ignore[union-attr]
    return [Record(line_number, i, piece, _type_defect(v, field_types)) for i, (piece, v) in enumerate(values, 1)]


def split_records(data: bytes, field_types: Mapping[str, str]) -> Iterator[Record]:
    """Every record of one landing file's bytes, in order (see the module docstring for the rules)."""
    if data.startswith(BOM):
        data = data[len(BOM) :]
    for number, raw in enumerate(LINE_BREAK.split(data), 1):
        if raw.strip():
            yield from _line_records(number, raw, field_types)


def count_records(data: bytes, field_types: Mapping[str, str]) -> int:
    return sum(1 for _ in split_records(data, field_types))


def record_batches(batches: Iterable[Any], field_types: Mapping[str, str]) -> Iterator[Any]:
    """``mapInArrow`` over ``binaryFile`` rows (``path``, ``content``) → :data:`RECORD_SCHEMA` batches."""
    import pyarrow as pa

    schema = pa.schema(
        [
            ("source_file", pa.string()),
            ("line_number", pa.int32()),
            ("record_in_line", pa.int32()),
            ("line", pa.string()),
            ("defect", pa.string()),
        ]
    )
    for batch in batches:
        paths = batch.column("path").to_pylist()
        contents = batch.column("content").to_pylist()
        columns: dict[str, list[Any]] = {name: [] for name in schema.names}
        for path, content in zip(paths, contents, strict=True):
            for r in split_records(content or b"", field_types):
                columns["source_file"].append(path)
                columns["line_number"].append(r.line_number)
                columns["record_in_line"].append(r.record_in_line)
                columns["line"].append(r.text)
                columns["defect"].append(r.defect)
        yield pa.RecordBatch.from_pydict(columns, schema=schema)
