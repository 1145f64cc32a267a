"""``parse_create`` on any JSON: a RunSpec or a 400 in OpenAI's shape, never anything else.

Property-based (hypothesis): bodies of every JSON shape, bodies built from the real parameter
names with values of every type, and input lists of items of every shape. Whatever the body, the
parser answers with a :class:`RunSpec` or an :class:`APIError` of status 400 whose ``param``, when
it names one, is a name of the body (or a path into ``input``); and what it accepts it accepts the
same way twice.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outlast.http.errors import APIError
from outlast.http.request import KNOWN_PARAMS, parse_create
from outlast.protocol.spec import RunSpec

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
NAMES = st.sampled_from(sorted(KNOWN_PARAMS)) | st.text(max_size=12)
ROLES = st.sampled_from(["user", "assistant", "system", "developer", "tool", ""]) | JSON
ITEM = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["message", "function_call", "function_call_output", "reasoning"])
        | JSON,
        "role": ROLES,
        "content": st.text(max_size=20) | st.lists(JSON, max_size=3) | JSON,
        "call_id": JSON,
        "output": JSON,
        "name": JSON,
        "arguments": JSON,
    },
)
BODIES = (
    JSON
    | st.dictionaries(NAMES, JSON, max_size=6)
    | st.fixed_dictionaries(
        {
            "model": st.text(max_size=8) | JSON,
            "input": st.text(max_size=20) | st.lists(ITEM, max_size=4),
        },
        optional={
            name: JSON for name in ("background", "stream", "store", "metadata", "instructions")
        },
    )
)
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(body: Any) -> RunSpec | APIError:
    try:
        return parse_create(body)
    except APIError as error:
        return error


@SETTINGS
@given(BODIES)
def test_any_body_is_a_run_spec_or_a_400_in_openais_shape(body: Any) -> None:
    result = outcome(body)
    if isinstance(result, RunSpec):
        assert isinstance(body, dict)
        assert isinstance(result.model, str) and result.model == body["model"]
        assert all(isinstance(item, dict) for item in result.input_items)
        return
    assert result.status == 400
    error = result.envelope()["error"]
    assert error["type"] == "invalid_request_error"
    assert isinstance(error["message"], str) and error["message"]
    assert error["param"] is None or isinstance(error["param"], str)
    if isinstance(body, dict) and error["param"] is not None:
        # The parameter it names is one of the body's (or a missing required one).
        param = error["param"]
        named = param == "model" or any(
            param == key or param.startswith((f"{key}.", f"{key}[")) for key in body
        )
        assert named, (param, body)


@SETTINGS
@given(BODIES)
def test_parsing_the_same_body_twice_gives_the_same_answer(body: Any) -> None:
    first, second = outcome(body), outcome(body)
    assert type(first) is type(second)
    if isinstance(first, APIError) and isinstance(second, APIError):
        assert (first.status, first.param, str(first)) == (second.status, second.param, str(second))
    else:
        # The same, but for the ids given to input items (new ones each time).
        assert isinstance(first, RunSpec) and isinstance(second, RunSpec)
        assert without_ids(first) == without_ids(second)


def without_ids(spec: RunSpec) -> RunSpec:
    items = [{k: v for k, v in item.items() if k != "id"} for item in spec.input_items]
    return dataclasses.replace(spec, input_items=items)
