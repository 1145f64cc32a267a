"""How the hosted adapters read a human's answer to a question they asked for their framework:
an approval of a tool call (``journaling.approval``, Agents SDK ``needs_approval``) and the value
a LangGraph ``interrupt()`` returns (``langgraph.resume_value``). A tool only runs when the answer
says so; the answer is a string, as the Responses API's ``function_call_output`` and an A2A
message's text carry it."""

from __future__ import annotations

from typing import Any

import pytest

from outlast.agents.frameworks.langgraph import resume_value
from outlast.agents.journaling import Approval, approval


@pytest.mark.parametrize(
    "answer", ["yes", "Yes", " YES\n", "y", "approve", "Approved", "allow", "ok", "true"]
)
def test_a_yes_approves(answer: str) -> None:
    assert approval(answer) == Approval(True)


@pytest.mark.parametrize("answer", ["no", "N", "reject", "rejected", "deny", "denied", "False"])
def test_a_no_rejects_without_a_reason(answer: str) -> None:
    assert approval(answer) == Approval(False)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"approved": true}', Approval(True)),
        ('{"approve": true}', Approval(True)),
        ('{"approved": false, "reason": "over the limit"}', Approval(False, "over the limit")),
        ('{"approved": "yes"}', Approval(False)),  # only JSON true approves
        ('{"reason": "unsure"}', Approval(False, "unsure")),
    ],
)
def test_a_json_object_says_either_with_a_reason(answer: str, expected: Approval) -> None:
    assert approval(answer) == expected


@pytest.mark.parametrize(
    "answer", ["not on a Sunday", "yes please", "{not json", "[true]", "", "   "]
)
def test_anything_else_rejects_and_is_the_reason(answer: str) -> None:
    assert approval(answer) == Approval(False, answer.strip() or None)


def test_an_answer_that_is_not_a_string_rejects() -> None:
    assert approval(None) == Approval(False)


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("yes", "yes"),
        ("42", "42"),
        ("true", "true"),
        ('"quoted"', '"quoted"'),
        ('{"approved": true, "edits": [1]}', {"approved": True, "edits": [1]}),
        (" [1, 2]", [1, 2]),
        ("{not json", "{not json"),
    ],
)
def test_interrupt_returns_the_answer_string_or_its_json_object_or_array(
    answer: str, value: Any
) -> None:
    assert resume_value(answer) == value
