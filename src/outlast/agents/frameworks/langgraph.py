"""Host a LangGraph compiled graph (``pip install 'outlast[langgraph]'``).

The graph runs with ``graph.astream({"messages": [...]}, stream_mode="messages")``: its state has
a ``messages`` list (``MessagesState``, ``create_react_agent``/``create_agent`` graphs), which gets
the whole conversation. Streamed message chunks become outputs: text and reasoning content as
deltas, tool call chunks as function call pieces, ``ToolMessage``s as function call outputs; a
whole message that a node returns without streaming is sent whole; each model message's
``usage_metadata`` gives the call's token counts.

Durable runs: the graph runs with LangGraph's own maintained checkpointer
(``langgraph-checkpoint-sqlite`` beside the server's SQLite file, ``outlast.db`` →
``outlast.langgraph.db``; ``langgraph-checkpoint-postgres`` in the server's PostgreSQL database),
in place of any it was compiled with, one thread per response (its id), with
``durability="sync"``: a checkpoint is saved after each super-step, before the next starts. Each
save is then journaled as a step, a *marker* (:mod:`outlast.agents.journaling`), which is where a
deploy hands the run over: between two nodes. A resumed run replays the markers (each attempt
adds one of its own, which makes the run resumable before its first checkpoint) and
continues the graph from its latest checkpoint (``astream(None, ...)``), re-running only the
node that was interrupted. The thread is deleted when the run ends completed or failed.

``interrupt(value)`` (human in the loop): a graph that stops at interrupts is journaled a marker
listing them, and each is asked with :meth:`AgentRequest.ask` (``INTERRUPT``, the value as the
payload); the run pauses with its checkpoints kept. The response that answers replays the
journal to the question, and goes on in the same thread (the first response's id, which the
run's first marker names) with ``Command(resume={interrupt id: answer})``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from outlast.agents._extras import require
from outlast.agents.base import Agent, AgentRequest
from outlast.agents.history import Item, conversation, parse_arguments
from outlast.protocol.outputs import (
    AgentOutput,
    FunctionCall,
    FunctionCallDelta,
    FunctionCallOutput,
    Message,
    Reasoning,
    ReasoningDelta,
    Usage,
    new_call_id,
)

_database = "sqlite:///outlast.db"


def configure(database_url: str) -> None:
    """The server's database (``--db``): the checkpoints are kept beside it or in it."""
    global _database
    _database = database_url


def checkpoint_location(database_url: str) -> str:
    """Where the checkpoints live: a file beside an SQLite store, the same PostgreSQL database."""
    if database_url.startswith("sqlite:///"):
        path = Path(database_url.removeprefix("sqlite:///"))
        return str(path.with_name(f"{path.stem}.langgraph{path.suffix or '.db'}"))
    return database_url


# The savers of this process, by event loop (LangGraph's savers are bound to the loop they were
# made in; a server has one).
_savers: dict[asyncio.AbstractEventLoop, Any] = {}
_saver_lock: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}


async def _saver() -> Any:
    loop = asyncio.get_running_loop()
    saver = _savers.get(loop)
    if saver is not None:
        return saver
    async with _saver_lock.setdefault(loop, asyncio.Lock()):
        if loop not in _savers:
            _savers[loop] = await _open_saver(checkpoint_location(_database))
    return _savers[loop]


async def _open_saver(location: str) -> Any:
    if location.startswith(("postgresql://", "postgres://")):
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        # The saver's own settings for its connections (from_conn_string's).
        pool: Any = AsyncConnectionPool(
            location,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
            min_size=1,
            max_size=4,
            open=False,
        )
        await pool.open()
        saver: Any = _journaling(AsyncPostgresSaver)(pool)
    else:
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        connection: Any = aiosqlite.connect(location)
        # Its thread must not keep the server's process alive once it has shut down (no agent
        # is told of the shutdown): a daemon thread, as aiosqlite's older Thread subclass allowed.
        getattr(connection, "_thread", connection).daemon = True
        saver = _journaling(AsyncSqliteSaver)(await connection)
    await saver.setup()
    return saver


class _Run:
    """One attempt's markers: a journaled step per checkpoint LangGraph saves."""

    def __init__(self, request: AgentRequest) -> None:
        self.request = request
        self.markers = 0

    async def marker(self, saved: Any = None, value: Any = None) -> tuple[bool, Any]:
        """The next marker: ``(True, its journaled value)``, or, not journaled, ``value``
        journaled as it, or the config of the checkpoint just ``saved``, or (neither: the
        attempt's own marker) the thread the run's checkpoints are in, and ``(False, ...)``."""
        name = f"langgraph:{self.markers}"
        self.markers += 1
        ran = False

        def record() -> Any:
            nonlocal ran
            ran = True
            if value is not None:
                return value
            if saved is not None:
                return {"checkpoint": saved}
            return {"resumed": True, "thread": self.request.response_id}

        journaled = await self.request.step(name, record)
        return not ran, journaled


_run: ContextVar[_Run | None] = ContextVar("outlast_langgraph_run", default=None)


def _journaling(saver_class: type) -> type:
    """``saver_class`` whose checkpoint saves, during a hosted run, are journaled markers."""

    base: Any = saver_class

    class JournalingSaver(base):  # type: ignore[misc]
        async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
            saved = await base.aput(self, config, checkpoint, metadata, new_versions)
            run = _run.get()
            if run is not None:
                # Saved first, then marked: a deploy hands the run over at a marker (a step
                # boundary), and the node just done must not be lost with it.
                await run.marker(saved)
            return saved

    JournalingSaver.__name__ = f"Journaling{saver_class.__name__}"
    return JournalingSaver


def adapt(graph: Any) -> Agent:
    """An outlast agent that runs ``graph`` (a LangGraph compiled graph) for each request."""
    messages_module = require("langchain_core.messages", "a LangGraph graph")
    from langgraph.types import Command

    async def langgraph_agent(request: AgentRequest) -> AsyncGenerator[AgentOutput, None]:
        saver = await _saver()
        hosted = graph.copy(update={"checkpointer": saver})
        run = _Run(request)
        # Replay the markers the journal holds; the first that it does not is this attempt's.
        last: Any = None
        thread: str | None = None
        answers: dict[str, Any] = {}  # the answers to the graph's interrupts, by their ids
        while True:
            journaled, value = await run.marker()
            if not journaled:
                break
            # The run's first marker names its thread: a response that answers an interrupt
            # continues the thread of the one that asked (the run's first response).
            thread = thread or value.get("thread")
            if "interrupted" in value:
                # The graph stopped at interrupt() and asked: the answers (or, not answered
                # yet, the question is asked again, which pauses the run here).
                await _ask(request, value["interrupted"], answers)
                continue
            checkpoint = value.get("checkpoint") or {}
            # A subgraph's checkpoints are journaled too (the markers' order is the saves'),
            # but the graph resumes from its own (the root namespace's).
            if not checkpoint.get("configurable", {}).get("checkpoint_ns"):
                last = checkpoint or last
        thread = thread or request.response_id
        config: dict[str, Any] = {"configurable": {"thread_id": thread}}
        graph_input: Any = None
        if await saver.aget_tuple(config) is not None:
            # On from the latest checkpoint: the node it follows is done (one saved in the
            # instant before a crash, its marker not journaled yet, too). A graph stopped at
            # interrupts that have been answered goes on with the answers.
            graph_input = _resume(Command, await hosted.aget_state(config), answers)
        elif last is not None:
            return  # the graph had ended, its thread deleted, before its response did
        else:
            messages = [_message(messages_module, item) for item in conversation(request)]
            graph_input = {"messages": [m for m in messages if m is not None]}
        translator = _Translator(messages_module)
        # The graph runs (and saves) in this task, and in tasks that copy its context: all see
        # the run. (Not reset: the task is the run's own, and ends with it.)
        _run.set(run)
        while True:
            # durability="sync": each checkpoint (and its marker) is saved before the next node
            # starts, so a deploy that hands the run over at a marker stops it between two
            # nodes, not with the next node's model call already made (LangGraph's default
            # saves behind).
            stream = hosted.astream(
                graph_input, config=config, stream_mode="messages", durability="sync"
            )
            try:
                async for chunk, _metadata in stream:
                    for output in translator.feed(chunk):
                        yield output
                state = await hosted.aget_state(config)
            except Exception:
                # The run ends failed. (A cancel, a close or a hand-over to be resumed from the
                # checkpoints is no Exception: the checkpoints are kept.)
                await saver.adelete_thread(thread)
                raise
            finally:
                await stream.aclose()
            if not state.interrupts:
                break
            # Stopped at interrupt(): journaled as a marker, then asked (the run pauses at the
            # first question, its checkpoints kept; the answering response replays to here).
            interrupted = [{"id": i.id, "value": i.value} for i in state.interrupts]
            await run.marker(value={"interrupted": interrupted})
            await _ask(request, interrupted, answers)
            graph_input = _resume(Command, state, answers)
        # The run has its whole output: its checkpoints are of no more use (the conversation
        # goes on from the response chain, in a thread of its own).
        await saver.adelete_thread(thread)

    langgraph_agent.__qualname__ = f"langgraph[{getattr(graph, 'name', '?')}]"
    return langgraph_agent


INTERRUPT = "interrupt"
"""The name of the question (:meth:`AgentRequest.ask`) a graph's ``interrupt(value)`` asks: the
client sees a pending ``function_call`` of that name, ``value`` as its arguments."""


def resume_value(answer: Any) -> Any:
    """What ``interrupt()`` returns for an answer: a JSON object or array decoded, any other
    answer the string as it came (``"yes"``, ``"42"`` and ``"true"`` stay strings)."""
    if isinstance(answer, str) and answer.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(answer)
        except json.JSONDecodeError:
            pass
    return answer


async def _ask(
    request: AgentRequest, interrupted: list[dict[str, Any]], answers: dict[str, Any]
) -> None:
    """Ask each of a graph's interrupts (journaled as ``{"id", "value"}``) as an ``INTERRUPT``
    question and keep its answer in ``answers``; the run pauses at the first not answered yet."""
    for interrupt in interrupted:
        answers[interrupt["id"]] = resume_value(await request.ask(INTERRUPT, interrupt["value"]))


def _resume(command: Any, state: Any, answers: dict[str, Any]) -> Any:
    """The input that resumes a graph stopped at ``state``: a ``Command`` with the answers to
    its interrupts, when they all have one; ``None`` (on from its checkpoint) otherwise, which
    runs the interrupted node again, to interrupt again and be asked."""
    pending = [i.id for i in state.interrupts]
    if pending and all(i in answers for i in pending):
        return command(resume={i: answers[i] for i in pending})
    return None


def _message(lc: Any, item: Item) -> Any:
    if item.kind == "message":
        if item.role == "assistant":
            return lc.AIMessage(content=item.text)
        if item.role in ("system", "developer"):
            return lc.SystemMessage(content=item.text)
        return lc.HumanMessage(content=item.text)
    if item.kind == "function_call":
        call = {"name": item.name, "args": parse_arguments(item.arguments), "id": item.call_id}
        return lc.AIMessage(content="", tool_calls=[call])
    if item.kind == "function_call_output":
        return lc.ToolMessage(content=item.text, tool_call_id=item.call_id)
    return None


class _Translator:
    """LangChain messages and chunks to outputs."""

    def __init__(self, lc: Any) -> None:
        self.lc = lc
        self.message_id: Any = None
        self.kind = ""
        # Tool call chunks name their call only in the first chunk; later ones give its index.
        self.calls: dict[Any, tuple[str, str]] = {}
        self.arguments: dict[Any, list[str]] = {}
        self.open_call: Any = None

    def feed(self, message: Any) -> list[AgentOutput]:
        lc = self.lc
        if isinstance(message, lc.ToolMessage):
            self.kind = "tool"
            return [FunctionCallOutput(message.tool_call_id, _text(message.content))]
        if isinstance(message, lc.AIMessageChunk):
            return self._chunk(message)
        if isinstance(message, lc.AIMessage):
            return self._whole(message)
        return []  # the input messages, and kinds a model does not produce

    def _chunk(self, chunk: Any) -> list[AgentOutput]:
        outputs: list[AgentOutput] = _usage(chunk)
        if chunk.id != self.message_id:
            # A new model message: close the text of the previous one.
            self.message_id, self.calls, self.arguments = chunk.id, {}, {}
            if self.kind == "text":
                outputs.append(Message())
            self.kind = ""
        for kind, piece in _content_pieces(chunk.content):
            if kind == "text":
                if self.kind not in ("text", ""):
                    outputs.append(Message())
                self.kind = "text"
                outputs.append(piece)
            else:
                self.kind = "reasoning"
                outputs.append(ReasoningDelta(piece))
        for call in chunk.tool_call_chunks or ():
            key = call.get("index")
            if call.get("id"):
                self.calls[key] = (call["id"], call.get("name") or "")
            if key not in self.calls:
                continue
            call_id, name = self.calls[key]
            self.kind = "call"
            self.open_call = key
            self.arguments.setdefault(key, []).append(call.get("args") or "")
            outputs.append(FunctionCallDelta(call_id, call.get("args") or "", name))
        if getattr(chunk, "chunk_position", None) == "last":
            # The model's message is whole: what it streamed last is complete now (not left open
            # until the next output, which a resume would find open and close incomplete).
            if self.kind == "text":
                outputs.append(Message())
            elif self.kind == "call" and self.open_call in self.calls:
                call_id, name = self.calls[self.open_call]
                outputs.append(FunctionCall(name, "".join(self.arguments[self.open_call]), call_id))
            self.kind = ""
        return outputs

    def _whole(self, message: Any) -> list[AgentOutput]:
        outputs: list[AgentOutput] = _usage(message)
        self.message_id, self.kind = message.id, ""
        texts: list[str] = []
        for kind, piece in _content_pieces(message.content):
            if kind == "reasoning":
                outputs.append(Reasoning(piece))
            else:
                texts.append(piece)
        if texts:
            outputs.append(Message("".join(texts)))
            outputs.append(Message())
        for call in message.tool_calls or ():
            arguments = json.dumps(call.get("args") or {})
            call_id = call.get("id") or new_call_id()
            outputs.append(FunctionCall(call.get("name", ""), arguments, call_id))
        return outputs


def _usage(message: Any) -> list[AgentOutput]:
    """A model message's (or chunk's) ``usage_metadata`` as a :class:`Usage`."""
    usage = getattr(message, "usage_metadata", None)
    if not usage:
        return []
    inputs = usage.get("input_token_details") or {}
    outputs = usage.get("output_token_details") or {}

    def count(value: Any) -> int:
        return value if isinstance(value, int) and value > 0 else 0

    return [
        Usage(
            input_tokens=count(usage.get("input_tokens")),
            output_tokens=count(usage.get("output_tokens")),
            cached_tokens=count(inputs.get("cache_read")),
            cache_write_tokens=count(inputs.get("cache_creation")),
            reasoning_tokens=count(outputs.get("reasoning")),
            total_tokens=count(usage.get("total_tokens")) or None,
        )
    ]


def _content_pieces(content: Any) -> list[tuple[str, str]]:
    """("text" | "reasoning", text) pieces of a message's content (a string or blocks)."""
    if isinstance(content, str):
        return [("text", content)] if content else []
    pieces: list[tuple[str, str]] = []
    for block in content or ():
        if isinstance(block, str):
            if block:
                pieces.append(("text", block))
            continue
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            pieces.append(("text", block["text"]))
        elif kind == "reasoning":
            # Responses-style blocks carry a summary list; standard blocks a "reasoning" text.
            for part in block.get("summary") or ():
                if part.get("text"):
                    pieces.append(("reasoning", part["text"]))
            if block.get("reasoning"):
                pieces.append(("reasoning", block["reasoning"]))
    return pieces


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    texts = [text for kind, text in _content_pieces(content) if kind == "text"]
    return "".join(texts) if texts else json.dumps(content, default=str)
