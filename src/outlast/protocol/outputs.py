"""What an agent may yield besides plain ``str`` text deltas.

Each class is one kind of output item of a Responses response. The normaliser
(:mod:`outlast.protocol.normalizer`) turns them into well-formed events; agents never build
events themselves.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any


def new_call_id() -> str:
    """A fresh ``call_id`` in OpenAI's ``call_…`` form."""
    return "call_" + secrets.token_hex(12)


@dataclass(slots=True)
class Message:
    """Start a new assistant message; with ``text``, the message's whole text at once.

    Plain ``str`` chunks continue the open message (or open one), so yield ``Message()`` only to
    split the output into separate message items. ``phase`` (``"commentary"`` or
    ``"final_answer"``, as a model labels its messages) is the phase of the message this starts
    (the next one opened, when ``text`` is empty).
    """

    text: str = ""
    phase: str | None = None


@dataclass(slots=True)
class FunctionCall:
    """A call of one of the agent's tools, with its complete arguments.

    ``arguments`` may be a JSON string or any JSON-able value (serialised for you). ``call_id`` is
    generated when omitted, so the agent can pass ``call.call_id`` to its ``FunctionCallOutput``.
    """

    name: str
    arguments: str | Any = "{}"
    call_id: str = field(default_factory=new_call_id)

    @property
    def arguments_json(self) -> str:
        """The arguments as the JSON string the Responses API carries."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, ensure_ascii=False, separators=(",", ":"))


@dataclass(slots=True)
class FunctionCallOutput:
    """The result of a tool call: ``output`` is sent as text (non-strings are JSON-encoded)."""

    call_id: str
    output: str | Any = ""

    @property
    def output_text(self) -> str:
        if isinstance(self.output, str):
            return self.output
        return json.dumps(self.output, ensure_ascii=False, separators=(",", ":"))


@dataclass(slots=True)
class Reasoning:
    """A reasoning item with a summary: the agent's account of what it is about to do."""

    summary: str


@dataclass(slots=True)
class FunctionCallDelta:
    """A piece of a function call's arguments, as a model streams them.

    The first delta of a ``call_id`` opens the call's item (give ``name`` then); the following
    ones extend its arguments. A :class:`FunctionCall` with the same ``call_id`` completes it: its
    arguments are the whole arguments, of which only the part not streamed yet is sent (a
    framework that repeats the whole arguments at the end doubles nothing), and a repeat of it
    after the call was completed is ignored. Anything else yielded completes the call with the
    arguments streamed so far. Deltas of one call must be consecutive.
    """

    call_id: str
    delta: str
    name: str = ""


@dataclass(slots=True)
class ReasoningDelta:
    """A piece of a reasoning summary, as a model streams it.

    Consecutive deltas form one reasoning item. A :class:`Reasoning` yielded while it is open
    completes it, its ``summary`` being the whole text (only the part not streamed yet is sent);
    anything else yielded completes it as streamed.
    """

    delta: str


@dataclass(slots=True)
class Usage:
    """The token counts of one model call, for the response's ``usage``.

    Yield one after each model call; the counts of every ``Usage`` a run yields are summed into
    its response's ``usage`` (``openai.types.responses.ResponseUsage``'s shape). It emits no event
    and does not close an open message or call. ``total_tokens`` defaults to
    ``input_tokens + output_tokens``; ``cached_tokens`` and ``cache_write_tokens`` are parts of
    ``input_tokens``, ``reasoning_tokens`` a part of ``output_tokens``.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int | None = None

    def __post_init__(self) -> None:
        for name in ("input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens",
                     "reasoning_tokens", "total_tokens"):  # fmt: skip
            value = getattr(self, name)
            if value is None and name == "total_tokens":
                continue
            # bool is an int, but True tokens is a bug in the caller, not a count.
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"Usage.{name} must be a non-negative int, not {value!r}")

    @property
    def total(self) -> int:
        """``total_tokens``, or the sum of input and output tokens when it was not given."""
        if self.total_tokens is None:
            return self.input_tokens + self.output_tokens
        return self.total_tokens


@dataclass(slots=True)
class File:
    """A file the agent produces: its bytes (``data``) or where it is (``url``), one of the two.

    An output item of its own (``outlast_file``, see docs/agents.md): over A2A, an artifact with
    one file part (raw bytes or a URL); over the Responses API, the item
    ``{"type": "outlast_file", "id", "status", "filename", "media_type", "file_data" | "file_url"}``
    (``file_data`` a ``data:`` URL of the bytes, as ``input_file`` takes them).
    """

    name: str
    media_type: str
    data: bytes | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        if (self.data is None) == (self.url is None):
            raise ValueError("outlast.File needs exactly one of data (bytes) or url")
        if self.data is not None and not isinstance(self.data, bytes | bytearray | memoryview):
            raise TypeError(f"File.data must be bytes, not {type(self.data).__name__}")
        if self.url is not None and not isinstance(self.url, str):
            raise TypeError(f"File.url must be a str, not {type(self.url).__name__}")
        if not isinstance(self.name, str) or not isinstance(self.media_type, str):
            raise TypeError("File.name and File.media_type must be strings")


@dataclass(slots=True)
class Data:
    """Structured data the agent produces: any JSON-able ``value``.

    An output item of its own (``outlast_data``): over A2A, an artifact with one data part; over
    the Responses API, ``{"type": "outlast_data", "id", "status", "media_type", "data"}``.
    """

    value: Any
    media_type: str = "application/json"


AgentOutput = (
    str
    | Message
    | FunctionCall
    | FunctionCallOutput
    | Reasoning
    | FunctionCallDelta
    | ReasoningDelta
    | Usage
    | File
    | Data
)
"""Everything an agent may yield."""
