"""A large request body is parsed in pieces (``outlast.http.limits.loads_in_pieces``), so that
the event loop gets the GIL back between them, with exactly orjson's result and orjson's errors;
an ``input`` of more items than the limit is refused at the first item too many.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outlast.http.errors import APIError
from outlast.http.limits import InputLimits, check_input, loads_in_pieces

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False,
    allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
    max_size=4),
    max_leaves=20,
)  # fmt: skip


def same_as_orjson(body: bytes) -> None:
    try:
        expected: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        with pytest.raises(orjson.JSONDecodeError):
            loads_in_pieces(body)
        return
    assert loads_in_pieces(body) == expected


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["model", "input", "x", "metadata"]), JSON))
def test_an_object_parses_as_orjson_parses_it(body: dict[str, Any]) -> None:
    same_as_orjson(orjson.dumps(body))
    same_as_orjson(orjson.dumps(body, option=orjson.OPT_INDENT_2))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_parse_or_fail_as_with_orjson(body: bytes) -> None:
    same_as_orjson(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"input": [1, 2,]}',
        b'{"input": [NaN]}',
        b'{"input": ["\\ud800"]}',
        b'{"model": "m"} trailing',
        b'{"model": "m",}',
        b'{"model" "m"}',
        b'{"input": [\xff]}',
        b' \n{ "input" : [ {"a" : 1} , 2 ] , "model":"m" } \n',
        b'{"\\u0069nput": [1, 2, 3]}',
        b"[1, 2, 3]",
        b"{}",
        b'{"input": []}',
    ],
)
def test_edge_cases_parse_or_fail_as_with_orjson(body: bytes) -> None:
    same_as_orjson(body)


def test_an_input_past_the_limit_is_refused_at_the_first_item_too_many() -> None:
    body = b'{"model": "m", "input": [' + b",".join([b'{"role": "user"}'] * 5) + b", oops"
    with pytest.raises(APIError) as refused:
        loads_in_pieces(body, InputLimits(max_items=3))
    assert refused.value.status == 400
    assert refused.value.param == "input" and refused.value.code == "array_above_max_length"
    # Within the limit, the whole body must still be valid JSON.
    with pytest.raises(orjson.JSONDecodeError):
        loads_in_pieces(body, InputLimits(max_items=10))


def test_check_input_refuses_a_parsed_list_past_the_limit() -> None:
    check_input([{}] * 3, InputLimits(max_items=3))
    check_input("a string is one item", InputLimits(max_items=1))
    with pytest.raises(APIError):
        check_input([{}] * 4, InputLimits(max_items=3))
