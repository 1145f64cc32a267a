"""A drop-in for Agent Framework's OpenAI Responses client that resumes streams exactly.

Agent Framework's ``OpenAIChatClient`` puts a continuation token on a background run's updates
that holds only the response id, and resumes a stream by replaying it from its first event: a
caller that resumes after a dropped connection (or in another process) sees every piece of text
again. :class:`OutlastChatClient` is the same client, except that

- every update of a running response carries a token with the sequence number of its event
  (``{"response_id": "resp_…", "sequence_number": 41}``, JSON-able like the stock one), and
  ``agent.run(stream=True, options={"continuation_token": token})`` continues right after that
  event (``starting_after``) instead of replaying;
- a background stream that drops (a cut connection, a read timeout, a restarting server, a 5xx)
  reconnects by itself and goes on where it stopped, through :class:`AsyncOutlastClient`.

Polling (``stream=False`` with a token), stock tokens (without a sequence number) and everything
else behave exactly as in ``OpenAIChatClient``. It needs the ``agent-framework`` extra::

    pip install 'outlast[agent-framework]'
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, NotRequired

try:
    from agent_framework import ChatResponse, ChatResponseUpdate, ResponseStream
    from agent_framework._types import _get_operation_state
    from agent_framework_openai import OpenAIChatClient, OpenAIChatOptions, OpenAIContinuationToken
    from agent_framework_openai._chat_client import (
        _SEEN_FUNCTION_CALL_OUTPUT_IDS_OPTION,
        _SEEN_TEXT_ANNOTATION_KEYS_OPTION,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "outlast.client.agent_framework needs Agent Framework: "
        "pip install 'outlast[agent-framework]'"
    ) from exc
from openai.types.responses import Response, ResponseStreamEvent

from outlast.client._async import AsyncOutlastClient, AsyncRunStream
from outlast.client._policy import TERMINAL_EVENT_TYPES, Backoff
from outlast.client._token import ContinuationToken

__all__ = ["OutlastChatClient", "OutlastContinuationToken"]

# Where a stream's response id is kept among its parse options: most events do not carry it.
_RESPONSE_ID_OPTION = "__outlast_response_id"


class OutlastContinuationToken(OpenAIContinuationToken):
    """Agent Framework's OpenAI token plus the sequence number of the last event consumed."""

    sequence_number: NotRequired[int]


class OutlastChatClient(OpenAIChatClient[OpenAIChatOptions[Any]]):
    """``OpenAIChatClient`` whose stream tokens carry the sequence number, resumed exactly.

    Construct it as ``OpenAIChatClient`` (``model``, ``base_url``, ``api_key``, ``async_client``,
    …). ``reconnect`` and ``give_up_after`` tune the automatic reconnects of background streams
    (see :class:`outlast.client.AsyncOutlastClient`).
    """

    def __init__(
        self,
        *args: Any,
        reconnect: Backoff | None = None,
        give_up_after: float | None = 300.0,
        stream_read_timeout: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._outlast_options: dict[str, Any] = {
            "reconnect": reconnect,
            "give_up_after": give_up_after,
            "stream_read_timeout": stream_read_timeout,
        }

    def _outlast(self) -> AsyncOutlastClient:
        return AsyncOutlastClient(openai_client=self.client, **self._outlast_options)

    def _inner_get_response(
        self,
        *,
        messages: Sequence[Any],
        options: Mapping[str, Any],
        stream: bool = False,
        **kwargs: Any,
    ) -> Awaitable[ChatResponse[Any]] | ResponseStream[ChatResponseUpdate, ChatResponse[Any]]:
        if stream:
            token = options.get("continuation_token")
            if isinstance(token, Mapping) and isinstance(token.get("sequence_number"), int):
                resume = ContinuationToken.from_dict(token)
                return self._follow(options, kwargs, lambda: self._outlast().resume(resume), resume)
            background = options.get("background") is True and token is None
            # Structured output goes through the SDK's parsing helper: leave that path as it is.
            if background and not options.get("response_format"):
                return self._follow(options, kwargs, None, None, messages)
        return super()._inner_get_response(
            messages=messages, options=options, stream=stream, **kwargs
        )

    def _follow(
        self,
        options: Mapping[str, Any],
        kwargs: Mapping[str, Any],
        resume: Callable[[], AsyncRunStream] | None,
        token: ContinuationToken | None,
        messages: Sequence[Any] = (),
    ) -> ResponseStream[ChatResponseUpdate, ChatResponse[Any]]:
        """Updates from a resumed stream, or from a new background run's stream."""
        function_call_ids: dict[int, tuple[str, str]] = {}
        response_format: Any = None

        def finalize(updates: Sequence[ChatResponseUpdate]) -> ChatResponse[Any]:
            return self._finalize_response_updates(updates, response_format=response_format)

        async def updates() -> AsyncIterator[ChatResponseUpdate]:
            nonlocal response_format
            events: AsyncRunStream | None = None
            try:
                if resume is not None:
                    validated = await self._validate_options(options)
                    events = resume()
                else:
                    _, run_options, validated = await self._prepare_request(messages, options)
                    if kwargs.get("extra_headers") is not None:
                        run_options["extra_headers"] = dict(kwargs["extra_headers"])
                    events = self._outlast().stream(**run_options)
                validated[_SEEN_FUNCTION_CALL_OUTPUT_IDS_OPTION] = set()
                validated[_SEEN_TEXT_ANNOTATION_KEYS_OPTION] = set()
                if token is not None:
                    validated[_RESPONSE_ID_OPTION] = token.response_id
                response_format = validated.get("response_format")
                async for event in events:
                    if isinstance(options, dict) and (
                        event.type in TERMINAL_EVENT_TYPES or event.type == "error"
                    ):
                        # As the stock client does: a finished run leaves no token to resume.
                        options.pop("continuation_token", None)
                    yield self._parse_chunk_from_openai(
                        event, options=validated, function_call_ids=function_call_ids
                    )
            except Exception as ex:
                self._handle_request_error(ex)
            finally:
                # A consumer that stops early closes this generator: close the connection too.
                if events is not None:
                    await events.close()

        return ResponseStream(updates(), finalizer=finalize)

    def _parse_chunk_from_openai(
        self,
        event: ResponseStreamEvent,
        options: dict[str, Any],
        function_call_ids: dict[int, tuple[str, str]],
        seen_reasoning_delta_item_ids: set[str] | None = None,
    ) -> ChatResponseUpdate:
        update = super()._parse_chunk_from_openai(
            event, options, function_call_ids, seen_reasoning_delta_item_ids
        )
        response = getattr(event, "response", None)
        if isinstance(response, Response):
            options[_RESPONSE_ID_OPTION] = response.id
        response_id = options.get(_RESPONSE_ID_OPTION)
        state: Literal["in_progress", "terminal"] | None = _get_operation_state(update)
        if isinstance(response_id, str) and state != "terminal" and event.type != "error":
            update.continuation_token = OutlastContinuationToken(
                response_id=response_id, sequence_number=event.sequence_number
            )
        return update
