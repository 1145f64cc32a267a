# Generated from _async.py by scripts/unasync.py: do not edit. Change _async.py and run
# `python scripts/unasync.py` (`make lint` checks that this file is up to date).
"""The synchronous client: :class:`OutlastClient` and its :class:`RunStream`."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from types import TracebackType
from typing import Any, cast

import openai
from openai import OpenAI, Stream
from openai.pagination import SyncCursorPage
from openai.types.responses import Response, ResponseStreamEvent

from outlast.client._errors import OutlastError, RunNotFound, StartInterrupted, WaitTimeout
from outlast.client._policy import (
    TERMINAL_STATUSES,
    Backoff,
    Cursor,
    OnReconnect,
    Reconnecting,
    Retry,
    check_outcome,
    interrupted_start,
    not_found,
    retryable,
    run_params,
    safe_to_resend,
)
from outlast.client._token import ContinuationToken, TokenLike


class OutlastClient:
    """Background runs that survive dropped connections, over the ``openai`` SDK's client.

    Uses only the standard Responses endpoints (plus :meth:`list_responses`, an outlast
    extension), so it works against OpenAI's API as well as against outlast.

    Args:
        base_url: The API's base URL, ``/v1`` included (``http://127.0.0.1:8000/v1``).
        api_key: The API key (``None``: the ``openai`` SDK reads ``OPENAI_API_KEY``).
        openai_client: An existing ``openai.OpenAI`` to use instead (``base_url`` and
            ``api_key`` are then ignored); it is not closed by :meth:`close`.
        timeout: Seconds for each non-streaming request.
        connect_timeout: Seconds to establish a connection.
        stream_read_timeout: Seconds a stream may stay silent before it is reconnected
            (outlast sends a keep-alive every 15 s, so this only fires on a dead connection).
        reconnect: The backoff between reconnects of a stream.
        polling: The backoff between polls in :meth:`wait`.
        give_up_after: Seconds without any answer from the server after which a stream or a
            wait gives up (:class:`ReconnectFailed`); ``None``: never.
        on_reconnect: Called before each reconnect of a stream (for logging or a status line).
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        openai_client: OpenAI | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        stream_read_timeout: float = 60.0,
        reconnect: Backoff | None = None,
        polling: Backoff | None = None,
        give_up_after: float | None = 300.0,
        on_reconnect: OnReconnect | None = None,
    ) -> None:
        self._owns_client = openai_client is None
        self.openai: OpenAI = openai_client or OpenAI(
            base_url=base_url, api_key=api_key, max_retries=0
        )
        self.timeout = openai.Timeout(timeout, connect=connect_timeout)
        self.stream_timeout = openai.Timeout(connect_timeout, read=stream_read_timeout)
        self.reconnect = reconnect or Backoff()
        self.polling = polling or Backoff(initial=0.2, maximum=5.0, multiplier=1.5)
        self.give_up_after = give_up_after
        self.on_reconnect = on_reconnect

    # -- runs --------------------------------------------------------------------------------

    def start(self, **params: Any) -> tuple[Response, ContinuationToken]:
        """Create a background run (``responses.create`` parameters); its response and token.

        A create that surely made nothing (connection refused, 429, 503) is sent again with
        backoff; any other failure is raised, since the run may exist.
        """
        params = run_params(params, stream=False)
        retry = Retry(self.reconnect, self.give_up_after)
        while True:
            try:
                response = self.openai.responses.create(
                    **params, background=True, timeout=self.timeout
                )
            except Exception as exc:
                if not safe_to_resend(exc):
                    interrupted_start(exc)
                    raise
                time.sleep(retry.next_delay(None))
                continue
            response = cast(Response, response)
            return response, ContinuationToken(response.id)

    def stream(self, **params: Any) -> RunStream:
        """Create a background run and stream it; the stream reconnects by itself.

        ``params`` are ``responses.create``'s (``background`` and ``stream`` are implied).
        """
        return RunStream(self, None, run_params(params, stream=True))

    def resume(self, token: TokenLike) -> RunStream:
        """The events after ``token``, reconnecting by itself, to the end of the run."""
        return RunStream(self, ContinuationToken.of(token), None)

    def poll(self, token: TokenLike) -> Response:
        """The response as it stands now (one request)."""
        token = ContinuationToken.of(token)
        try:
            return self.openai.responses.retrieve(token.response_id, timeout=self.timeout)
        except openai.NotFoundError:
            raise RunNotFound(token.response_id) from None

    def wait(self, token: TokenLike, *, timeout: float | None = None) -> Response:
        """Poll (with backoff) until the run ends; its final response, whatever the outcome.

        Raises :class:`WaitTimeout` after ``timeout`` seconds (the run goes on).
        """
        token = ContinuationToken.of(token)
        deadline = None if timeout is None else time.monotonic() + timeout
        delays = self.polling.delays()
        retry = Retry(self.reconnect, self.give_up_after)
        response: Response | None = None
        while True:
            try:
                response = self.poll(token)
                retry.healthy()
                if response.status in TERMINAL_STATUSES:
                    return response
                delay = next(delays)
            except Exception as exc:
                if not retryable(exc):
                    raise
                delay = retry.next_delay(token)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeout(response, token, cast(float, timeout))
                delay = min(delay, left)
            time.sleep(delay)

    def result(self, token: TokenLike, *, timeout: float | None = None) -> Response:
        """Wait for the run; its response if it completed, else :class:`RunFailed`,
        :class:`RunCancelled` or :class:`RunIncomplete`."""
        return check_outcome(self.wait(token, timeout=timeout))

    def cancel(self, token: TokenLike) -> Response:
        """Cancel the run (idempotent: a finished run is returned as it is)."""
        token = ContinuationToken.of(token)
        retry = Retry(self.reconnect, self.give_up_after)
        while True:
            try:
                return self.openai.responses.cancel(token.response_id, timeout=self.timeout)
            except Exception as exc:
                if (error := not_found(exc, token.response_id)) is not None:
                    raise error from None
                if not retryable(exc):
                    raise
                time.sleep(retry.next_delay(token))

    def list_responses(
        self,
        *,
        status: str | None = None,
        limit: int = 20,
        order: str = "desc",
        after: str | None = None,
    ) -> SyncCursorPage[Response]:
        """This key's responses, newest first (outlast only: ``GET /v1/responses``).

        Iterating the page fetches the following pages as needed.
        """
        query: dict[str, Any] = {"limit": limit, "order": order}
        if status is not None:
            query["status"] = status
        if after is not None:
            query["after"] = after
        return self.openai.get_api_list(
            "/responses",
            model=Response,
            page=SyncCursorPage[Response],
            options={"params": query, "timeout": self.timeout},
        )

    # -- plumbing ----------------------------------------------------------------------------

    def _open(self, token: ContinuationToken) -> Stream[ResponseStreamEvent]:
        after = token.starting_after
        return self.openai.responses.retrieve(
            token.response_id,
            stream=True,
            starting_after=openai.omit if after is None else after,
            timeout=self.stream_timeout,
        )

    def _create(self, params: dict[str, Any], retry: Retry) -> Stream[ResponseStreamEvent]:
        while True:
            try:
                stream = self.openai.responses.create(
                    **params, background=True, stream=True, timeout=self.stream_timeout
                )
                return cast(Stream[ResponseStreamEvent], stream)
            except Exception as exc:
                if not safe_to_resend(exc):
                    interrupted_start(exc)
                    raise
                time.sleep(retry.next_delay(None))

    def close(self) -> None:
        if self._owns_client:
            self.openai.close()

    def __enter__(self) -> OutlastClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class RunStream:
    """A run's events, each exactly once and in order, across dropped connections.

    ``for`` over it yields ``openai`` event objects. :attr:`token` is, at every event, the
    token that resumes right after that event: save it, and :meth:`OutlastClient.resume`
    continues there, in this process or another.
    """

    def __init__(
        self,
        client: OutlastClient,
        token: ContinuationToken | None,
        create: dict[str, Any] | None,
    ) -> None:
        self._client = client
        self._cursor = Cursor(token)
        self._create = create
        self._source: Stream[ResponseStreamEvent] | None = None
        self._events: Generator[ResponseStreamEvent, None, None] = self._run()
        self.reconnects = 0
        """How many times the stream has reconnected."""

    @property
    def token(self) -> ContinuationToken | None:
        """Resumes after the last event yielded (``None`` until a created run's first event)."""
        return self._cursor.token

    @property
    def response_id(self) -> str | None:
        token = self._cursor.token
        return token.response_id if token is not None else None

    @property
    def response(self) -> Response | None:
        """The latest response object an event carried; the final one once the run ended."""
        return self._cursor.response

    @property
    def finished(self) -> bool:
        """Whether the run's terminal event has been yielded (or the run had already ended)."""
        return self._cursor.finished

    def __iter__(self) -> Iterator[ResponseStreamEvent]:
        return self

    def __next__(self) -> ResponseStreamEvent:
        return next(self._events)

    def result(self) -> Response:
        """Read the rest of the stream; the final response if it completed, else
        :class:`RunFailed`, :class:`RunCancelled` or :class:`RunIncomplete`."""
        for _ in self:
            pass
        if self.response is None:
            raise OutlastError("the stream ended without a response object")
        return check_outcome(self.response)

    def close(self) -> None:
        """Close the connection (the run goes on on the server)."""
        self._events.close()
        if self._source is not None:
            self._source.close()
            self._source = None

    def __enter__(self) -> RunStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self) -> Generator[ResponseStreamEvent, None, None]:
        client, cursor = self._client, self._cursor
        retry = Retry(client.reconnect, client.give_up_after)
        try:
            if self._create is not None:
                self._source = client._create(self._create, retry)
            while True:
                if self._source is None:
                    token = cast(ContinuationToken, cursor.token)
                    try:
                        self._source = client._open(token)
                    except Exception as exc:
                        if (missing := not_found(exc, token.response_id)) is not None:
                            raise missing from None
                        if not retryable(exc):
                            raise
                        self._wait(retry, exc)
                        continue
                retry.healthy()
                fresh, error = False, None
                try:
                    for event in self._source:
                        if cursor.accept(event):
                            fresh = True
                            retry.progressed()
                            yield event
                            if cursor.finished:
                                return
                except Exception as exc:
                    if not retryable(exc):
                        raise
                    error = exc
                self._source.close()
                self._source = None
                if cursor.token is None:
                    raise StartInterrupted(
                        "the stream broke before the response's id arrived"
                    ) from error
                if error is None and not fresh and self._ended():
                    return
                self._wait(retry, error)
        finally:
            if self._source is not None:
                self._source.close()
                self._source = None

    def _ended(self) -> bool:
        """After an empty stream: whether the run had ended already (nothing more to read)."""
        try:
            response = self._client.poll(cast(ContinuationToken, self._cursor.token))
        except RunNotFound:
            raise
        except Exception as exc:
            if not retryable(exc):
                raise
            return False
        if response.status not in TERMINAL_STATUSES:
            return False
        self._cursor.response = response
        self._cursor.finished = True
        return True

    def _wait(self, retry: Retry, error: BaseException | None) -> None:
        token = cast(ContinuationToken, self._cursor.token)
        delay = retry.next_delay(token)
        self.reconnects += 1
        if self._client.on_reconnect is not None:
            self._client.on_reconnect(Reconnecting(token, retry.attempt, delay, error))
        if delay:
            time.sleep(delay)
