"""The records of a landing file's bytes (pitlake.ingest.records): exact records from hand-written bytes."""

from __future__ import annotations

from pitlake.ingest.records import Record, count_records, split_records

TYPES = {"id": "string", "amount": "number"}


def records(data: bytes) -> list[tuple[int, int, str, str | None]]:
    return [(r.line_number, r.record_in_line, r.text, r.defect) for r in split_records(data, TYPES)]


def test_line_breaks_of_every_kind_and_blank_lines():
    data = b'{"id":"a"}\r\n{"id":"b"}\r{"id":"c"}\n\n   \r\n{"id":"d"}'
    assert records(data) == [
        (1, 1, '{"id":"a"}', None),
        (2, 1, '{"id":"b"}', None),
        (3, 1, '{"id":"c"}', None),
        (6, 1, '{"id":"d"}', None),  # lines 4 and 5 are blank: no record; no final newline needed
    ]


def test_a_file_of_carriage_returns_only_is_one_record_per_line():
    assert [r[:2] for r in records(b'{"id":"a"}\r{"id":"b"}\r{"id":"c"}\r')] == [(1, 1), (2, 1), (3, 1)]


def test_several_objects_on_one_line_are_several_records():
    assert records(b'{"id":"a"}{"id":"b"}  {"id":"c"}\n') == [
        (1, 1, '{"id":"a"}', None),
        (1, 2, '{"id":"b"}', None),
        (1, 3, '{"id":"c"}', None),
    ]


def test_values_that_would_be_altered_on_the_way_in_are_defects():
    data = "\n".join(
        [
            '{"id":"caf\xe9"}',  # fine: UTF-8 é
            '{"id":1}',  # a number where the schema says string
            '{"id":"a","amount":"12"}',  # a string where the schema says number
            '{"id":"a","amount":true}',  # a boolean is not a number
            '{"id":"a","amount":NaN}',
            '{"id":"a","amount":-Infinity}',
            '{"id":"a"} trailing',
            '{"id":"a"}{"id":',  # a complete object, then an incomplete one: the line is garbage after the first
            "[1, 2]",
            "{'id': 'a'}",  # Python's quotes: not JSON
            '{"id":"a","extra":{"x":1},"amount":null}',  # unknown fields are ignored, null is fine
        ]
    ).encode()
    assert [(r[0], r[3]) for r in records(data)] == [
        (1, None),
        (2, "wrong_type"),
        (3, "wrong_type"),
        (4, "wrong_type"),
        (5, "non_finite_number"),
        (6, "non_finite_number"),
        (7, "trailing_garbage"),
        (8, "trailing_garbage"),
        (9, "not_an_object"),
        (10, "malformed_record"),
        (11, None),
    ]
    assert records(data)[6][2] == '{"id":"a"} trailing'  # the whole line is kept


def test_bytes_that_are_not_utf8_are_kept_escaped_never_replaced():
    data = b'{"id":"a\xff\xfeb"}\n{"id":"ok"}\n'
    assert records(data) == [
        (1, 1, '{"id":"a\\xff\\xfeb"}', "invalid_utf8"),
        (2, 1, '{"id":"ok"}', None),
    ]


def test_a_byte_order_mark_is_dropped_and_an_empty_file_has_no_records():
    assert list(split_records(b'\xef\xbb\xbf{"id":"a"}\n', TYPES)) == [Record(1, 1, '{"id":"a"}', None)]
    assert count_records(b"", TYPES) == 0
    assert count_records(b"\n\r\n  \n", TYPES) == 0
    assert count_records(b'{"id":"a"}{"id":"b"}\n{"id":\n', TYPES) == 3
