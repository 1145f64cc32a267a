"""Options an agent declares about itself."""

from __future__ import annotations

from typing import Any, TypeVar

F = TypeVar("F")

MAX_ATTEMPTS_ATTRIBUTE = "outlast_max_attempts"


def retry_safe(agent: F | None = None, *, max_attempts: int = 3) -> Any:
    """Declare an agent safe to run again from the start.

    When the replica executing such an agent dies (or loses its lease), another replica re-queues
    the run and executes it again, up to ``max_attempts`` attempts in all, instead of ending it
    ``failed``. Only declare it for agents whose side effects may safely happen twice.

    Use as ``@retry_safe`` or ``@retry_safe(max_attempts=5)`` on the agent function, or call it
    on any agent object: ``agent = retry_safe(graph)``.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")

    def mark(target: F) -> F:
        setattr(target, MAX_ATTEMPTS_ATTRIBUTE, max_attempts)
        return target

    if agent is None:
        return mark
    return mark(agent)


def max_attempts(agent: object) -> int:
    """How many attempts ``agent`` allows (1 unless it was declared :func:`retry_safe`)."""
    value = getattr(agent, MAX_ATTEMPTS_ATTRIBUTE, 1)
    return value if isinstance(value, int) and value >= 1 else 1


MESSAGE_REPLY_ATTRIBUTE = "outlast_message_reply"


def message_reply(agent: F) -> F:
    """Declare that an A2A ``SendMessage`` may be answered with a direct ``Message``.

    A2A lets an agent answer a send with a message instead of a task for "simple, immediate
    interactions". A send to an agent declared so, that waits for the answer (not
    ``returnImmediately``, not streaming), is answered with the agent's message when its run
    completes with one text message and nothing else; any other run (tool calls, files, several
    messages, a question, a failure) is still answered with its task. Use as ``@message_reply``
    on the agent function.
    """
    setattr(agent, MESSAGE_REPLY_ATTRIBUTE, True)
    return agent


def replies_with_message(agent: object) -> bool:
    """Whether ``agent`` was declared :func:`message_reply`."""
    return getattr(agent, MESSAGE_REPLY_ATTRIBUTE, False) is True
