"""The web console in a real browser, as a user sees it, against a real ``outlast serve``.

One server (SQLite, one API key, ``console_agents:router``) serves the module; each test has a
fresh browser context (its own sessionStorage) with the key already entered, except the tests of
entering it. A test fails on any uncaught error in the page. What is checked:

- a wrong key is refused and the right one opens the runs, which never shows the key; without
  keys configured there is no prompt at all;
- the list shows a new run and its status change without a reload; its status filter, counts
  and throughput; its time filter; paging as the listing does; an A2A task as a run; on
  PostgreSQL (an api and a worker replica), the replica that executes each run;
- a run page streams a demo run to the end and its text equals the API's ``output_text``; it
  shows reasoning, tool calls with their arguments and outputs, and each message; a failed
  run's error, timings and attempt;
- blocking the page's network mid-run and restoring it resumes without duplicated text; so does
  a stream gone silent while the laptop slept, as soon as the page is visible again; a server
  killed mid-run and restarted: the page follows the resumed run to its end, its resumes shown;
- cancel from the page stops the run (the API says ``cancelled``);
- hostile agent output (script tags, ``javascript:`` links, event handler attributes) does not
  execute, and the page's Content-Security-Policy blocks any that reached the page as markup;
- a finished 20,000-event run's page is usable at once and keeps a bounded number of rows in the
  page; a run at about 1,000 events/s is followed to the end (both measured: artefacts' timings);
- the continuation token copied from a run page names its last event; the page's ``outlast
  tail`` and SDK snippets, run as they are, continue right after it; delete removes the run;
- a run started from the page opens its page (a foreground one once it has ended);
- a run waiting for input (``request.ask``) is answered from its page, and the answer continues
  it in a new response chained to it;
- a running run is steered from its page: it ends ``steered`` and the page opens the successor
  that carries the input; steering input for a run that ends waiting for input goes first in
  the response that answers it; a run executing on another replica is not offered for steering;
- the key is never in a request's URL, in a test's page (markup or field values), or in the
  server's log.

Screenshots of the list, of a run page and of a steered run are saved in the artefacts folder
(see conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from console_agents import HOSTILE_TEXT

from a2a_support import rpc, rpc_message
from databases import fresh_database
from durable_agents import expected_text
from faultproxy import FaultProxy
from serverproc import ServerProcess

KEY = "console-test-key"
HERE = Path(__file__).resolve().parent
TERMINAL = {"completed", "failed", "cancelled", "incomplete"}


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("console")
    server = ServerProcess(
        directory / "console.db",
        agent="console_agents:router",
        args=["--api-key", KEY],
        env=agents_env(),
        log_dir=directory,
    ).start()
    yield server
    server.stop()
    # Every test's requests were keyed: not one of them left the key in the server's log.
    assert KEY not in server.log()


def agents_env() -> dict[str, str]:
    """The test agents' modules (console_agents and tests/support) on the server's path."""
    support = HERE.parent / "support"
    return {
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(HERE), str(support), os.environ.get("PYTHONPATH")])
        )
    }


@pytest.fixture
def replicas(
    tmp_path: Path,
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two replicas on one PostgreSQL database, without API keys: one serves the API and the
    console (``--role api``), the other executes every run (``--role worker``)."""
    directory = tmp_path
    # The database is made and dropped with asyncio.run, which cannot run in this thread while
    # Playwright's sync API keeps its event loop here: in a thread of its own.
    databases = fresh_database("postgres", directory)
    with ThreadPoolExecutor(1) as thread:
        database = thread.submit(databases.__enter__).result()
        started: list[ServerProcess] = []
        try:
            for role in ("api", "worker"):
                replica = ServerProcess(database.url, agent="console_agents:router",
                                        args=["--role", role, "--drain-timeout", "1"],
                                        env=agents_env(), log_dir=directory)  # fmt: skip
                started.append(replica.start())
            yield started[0], started[1]
        finally:
            for replica in reversed(started):
                replica.stop()
            thread.submit(databases.__exit__, None, None, None).result()


@pytest.fixture
def api(console_server: ServerProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=console_server.url, headers=headers, timeout=30) as client:
        yield client


@contextmanager
def fresh_page(browser: Any, *, with_key: bool = True) -> Iterator[Any]:
    """A page of a fresh context (with the key entered unless not ``with_key``), closed at the
    end; the block fails on an error in the page."""
    errors: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    if with_key:
        context.add_init_script(f"sessionStorage.setItem('outlast.apiKey', {json.dumps(KEY)})")
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    # The key goes in a header, never in a URL (where logs, history and Referer would keep it).
    page.on(
        "request",
        lambda request: errors.append(f"the key in {request.url}") if KEY in request.url else None,
    )
    try:
        yield page
    finally:
        context.close()
    assert errors == [], f"errors in the page: {errors}"


def key_shown(page: Any) -> bool:
    """Whether the key is anywhere in the page: its markup, or the value of a field."""
    shown: bool = page.evaluate(
        """k => document.documentElement.outerHTML.includes(k)
        || [...document.querySelectorAll('input, textarea')].some(e => e.value.includes(k))""",
        KEY,
    )
    return shown


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page of a fresh context with the key entered; the test fails on an error in the page."""
    with fresh_page(browser) as page:
        yield page
        shown = key_shown(page)
    assert not shown, "the key is in the page"


def create(api: httpx.Client, model: str, text: str) -> str:
    reply = api.post("/v1/responses", json={"model": model, "input": text, "background": True})
    assert reply.status_code == 200, reply.text
    response_id: str = reply.json()["id"]
    return response_id


def wait_ended(api: httpx.Client, response_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response: dict[str, Any] = api.get(f"/v1/responses/{response_id}").json()
        if response["status"] in TERMINAL:
            return response
        assert time.monotonic() < deadline, f"{response_id} did not end"
        time.sleep(0.1)


def output_text(response: dict[str, Any]) -> str:
    """The SDK's ``output_text``: every output_text part of every message, joined."""
    return "".join(
        part["text"]
        for item in response["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )


def open_run(page: Any, server_url: str, response_id: str) -> None:
    page.goto(f"{server_url}/console#/runs/{response_id}")
    try:
        page.wait_for_selector("#run-status", timeout=10_000)
    except Exception:
        raise AssertionError(page.inner_text("main")) from None


def wait_run_status(page: Any, status: str, timeout: float = 60_000) -> None:
    page.wait_for_function(
        "s => document.querySelector('#run-status')?.textContent === s", arg=status, timeout=timeout
    )


def wait_next_run(page: Any, response_id: str) -> str:
    """The id of the run the page opens next, in place of ``response_id``'s."""
    page.wait_for_function(
        "old => location.hash.startsWith('#/runs/resp_') && location.hash !== '#/runs/' + old",
        arg=response_id,
    )
    next_id: str = page.url.rsplit("/", 1)[1]
    return next_id


def plain_text(page: Any) -> str:
    """What the page shows as the run's output_text (the "output_text" view)."""
    text: str = page.eval_on_selector("#output-text", "el => el.textContent")
    return text


def test_a_wrong_key_is_refused_and_the_right_one_opens_the_runs(
    browser: Any, console_server: ServerProcess, api: httpx.Client, artefacts: Path
) -> None:
    create(api, "count", "n=3")
    with fresh_page(browser, with_key=False) as page:
        page.goto(console_server.url + "/")
        assert page.url == f"{console_server.url}/console"
        page.fill("#api-key", "not-the-key")
        page.click("text=Use key")
        page.wait_for_selector("text=That key was refused.")
        assert page.query_selector("table.runs") is None

        page.fill("#api-key", KEY)
        page.click("text=Use key")
        page.wait_for_selector("table.runs tbody tr")

        assert not key_shown(page) and KEY not in page.url
        assert KEY not in console_server.log()
        assert page.evaluate("sessionStorage.getItem('outlast.apiKey')") == KEY
        assert page.evaluate("document.cookie") == ""


def test_the_list_shows_a_new_run_and_its_status_change_without_reload(
    page: Any, console_server: ServerProcess, api: httpx.Client, artefacts: Path
) -> None:
    page.goto(console_server.url + "/console")
    page.wait_for_selector("section.overview")
    page.evaluate("window.__notReloaded = true")

    response_id = create(api, "count", "n=20 delay=0.1")
    row = f"tr[data-id='{response_id}']"
    page.wait_for_selector(f"{row}[data-status='in_progress'], {row}[data-status='queued']")
    page.wait_for_selector(f"{row}[data-status='completed']", timeout=30_000)

    assert page.evaluate("window.__notReloaded") is True
    assert page.inner_text(f"{row} td.input") == "n=20 delay=0.1"
    page.screenshot(path=str(artefacts / "console-list.png"))


def test_the_status_filter_and_its_count_show_only_runs_of_that_status(
    page: Any, console_server: ServerProcess, api: httpx.Client
) -> None:
    failed = create(api, "fail", "on purpose")
    wait_ended(api, failed)
    page.goto(console_server.url + "/console")
    page.wait_for_selector(f"tr[data-id='{failed}']")
    # The counts are the store's, which records the end a moment after the run's own state.
    deadline = time.monotonic() + 10
    while (count := api.get("/v1/console/overview").json()["counts"].get("failed", 0)) < 1:
        assert time.monotonic() < deadline, "the overview never counted the failed run"
        time.sleep(0.1)
    page.wait_for_function(
        "n => document.querySelector(\".tile[data-status='failed'] .tile-count\").textContent === n",
        arg=str(count),
    )

    # The throughput: the runs ended in each of the last 15 minutes, this one among the last.
    bars = page.eval_on_selector_all(".bars .bar", "els => els.map(e => e.title)")
    assert len(bars) == 15 and bars[-1].endswith("ended in minute 0")
    assert int(bars[-1].split()[0]) >= 1

    page.select_option("#status-filter", "failed")
    page.wait_for_function(
        "() => [...document.querySelectorAll('table.runs tbody tr')]"
        ".every(tr => tr.dataset.status === 'failed')"
    )
    assert page.query_selector(f"tr[data-id='{failed}']") is not None


def test_a_run_page_streams_a_demo_run_to_the_end_and_its_text_equals_output_text(
    page: Any, console_server: ServerProcess, api: httpx.Client, artefacts: Path
) -> None:
    response_id = create(api, "demo", "steps=4 delay=0.4 the history of SSE")
    open_run(page, console_server.url, response_id)
    page.wait_for_selector(".item.message")  # text appears while the run is still going
    wait_run_status(page, "completed")

    response = api.get(f"/v1/responses/{response_id}").json()
    assert plain_text(page) == output_text(response) != ""
    shown = page.inner_text(".output .item.message >> nth=-1")
    assert shown.startswith("Summary of 4 steps on the history of SSE")
    meta = api.get(f"/v1/console/runs?ids={response_id}").json()["data"][0]
    page.wait_for_function("n => document.querySelector('#event-count').textContent === n",
                           arg=str(meta["events"]))  # fmt: skip
    page.click(".timeline-row >> nth=0")
    page.wait_for_function(
        "() => document.querySelector('#event-json').textContent.includes('\"sequence_number\"')"
    )
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(artefacts / "console-run.png"))
    page.eval_on_selector("section.events-card", "el => el.scrollIntoView()")
    page.screenshot(path=str(artefacts / "console-run-events.png"))


def test_blocking_the_network_mid_run_and_restoring_it_resumes_without_duplicates(
    browser: Any, console_server: ServerProcess, api: httpx.Client
) -> None:
    with FaultProxy(console_server.port) as proxy, fresh_page(browser) as page:
        response_id = create(api, "demo", "steps=6 delay=0.6 resumable streams")
        open_run(page, proxy.url, response_id)
        page.wait_for_function(
            "() => Number(document.querySelector('#event-count').textContent) > 20"
        )
        # The network goes away: every new request fails, and the open stream is cut.
        page.route("**/v1/**", lambda route: route.abort("internetdisconnected"))
        proxy.cut_all()
        page.wait_for_function(
            "() => document.querySelector('#connection').textContent.startsWith('reconnecting')"
        )
        # Events the page had received before the cut may still be rendering; then nothing.
        page.wait_for_timeout(500)
        seen_offline = int(page.inner_text("#event-count"))
        page.wait_for_timeout(1000)
        assert int(page.inner_text("#event-count")) == seen_offline
        page.unroute("**/v1/**")
        wait_run_status(page, "completed")

        response = api.get(f"/v1/responses/{response_id}").json()
        assert plain_text(page) == output_text(response)
        meta = api.get(f"/v1/console/runs?ids={response_id}").json()["data"][0]
        assert int(page.inner_text("#event-count")) == meta["events"]
        assert int(page.inner_text("dd[data-field=reconnects]")) >= 1


def test_a_stream_gone_silent_while_the_laptop_slept_resumes_on_waking_without_duplicates(
    browser: Any, console_server: ServerProcess, api: httpx.Client
) -> None:
    with FaultProxy(console_server.port) as proxy, fresh_page(browser) as page:
        response_id = create(api, "demo", "steps=4 delay=0.5 sleeping laptops")
        open_run(page, proxy.url, response_id)
        page.wait_for_function(
            "() => Number(document.querySelector('#event-count').textContent) > 0"
        )
        # The laptop sleeps: its connections stay open, and nothing more comes on them.
        proxy.sleep_all()
        wait_ended(api, response_id)  # the run goes on to its end meanwhile
        seen = int(page.inner_text("#event-count"))
        assert page.inner_text("#connection") == "live"
        # The lid opens a minute later: the page is visible again, its stream long silent.
        page.clock.set_fixed_time(time.time() + 60)
        page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
        # At once, not when the stream's 40 s watchdog would give up on it.
        wait_run_status(page, "completed", timeout=20_000)

        response = api.get(f"/v1/responses/{response_id}").json()
        assert plain_text(page) == output_text(response)
        meta = api.get(f"/v1/console/runs?ids={response_id}").json()["data"][0]
        page.wait_for_function(
            "() => document.querySelector('#connection').textContent === 'ended'"
        )
        assert int(page.inner_text("#event-count")) == meta["events"] > seen
        assert page.inner_text("dd[data-field=reconnects]") == "1"


def test_a_server_killed_mid_run_and_restarted_the_page_follows_the_resumed_run_to_its_end(
    browser: Any, tmp_path: Path
) -> None:
    server = ServerProcess(tmp_path / "restart.db", agent="console_agents:router",
                           args=["--api-key", KEY], env=agents_env(), log_dir=tmp_path)  # fmt: skip
    keyed = {"Authorization": f"Bearer {KEY}"}
    try:
        with (
            fresh_page(browser) as page,
            httpx.Client(base_url=server.url, headers=keyed, timeout=30) as api,
        ):
            server.start()
            # A durable agent: after a crash its run goes on from its last completed step.
            body = {"model": "journaled", "input": "steps=30 delay=0.1", "background": True,
                    "metadata": {"step_log": str(tmp_path / "steps.log")}}  # fmt: skip
            response_id = api.post("/v1/responses", json=body).json()["id"]
            open_run(page, server.url, response_id)
            page.wait_for_function(
                "() => Number(document.querySelector('#event-count').textContent) > 10"
            )
            server.kill()  # no drain, no goodbye: the next start resumes the run
            page.wait_for_function(
                "() => document.querySelector('#connection').textContent.startsWith('reconnecting')"
            )
            server.start()
            wait_run_status(page, "completed")

            response = wait_ended(api, response_id)
            assert plain_text(page) == output_text(response) == expected_text(30)
            assert response["metadata"]["outlast_resumes"] == "1"  # resumed once, from its journal
            meta = api.get(f"/v1/console/runs?ids={response_id}").json()["data"][0]
            page.wait_for_function(
                "() => document.querySelector('#connection').textContent === 'ended'"
            )
            assert int(page.inner_text("#event-count")) == meta["events"]
            assert page.inner_text("dd[data-field=resumes]") == "1"
            assert page.inner_text("dd[data-field=attempt]") == str(meta["attempt"])
            assert int(page.inner_text("dd[data-field=reconnects]")) >= 1
    finally:
        server.stop()


def test_cancel_from_the_page_stops_the_run(
    page: Any, console_server: ServerProcess, api: httpx.Client
) -> None:
    response_id = create(api, "block", "wait for a cancel")
    open_run(page, console_server.url, response_id)
    wait_run_status(page, "in progress")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#cancel")
    wait_run_status(page, "cancelled")
    assert wait_ended(api, response_id)["status"] == "cancelled"
    assert page.query_selector("#cancel") is None


def test_a_persons_slow_click_on_cancel_lands_while_a_run_streams_fast(
    page: Any, console_server: ServerProcess, api: httpx.Client
) -> None:
    response_id = create(api, "rate", "n=30000 per_second=1000")
    open_run(page, console_server.url, response_id)
    page.wait_for_function("() => Number(document.querySelector('#event-count').textContent) > 500")
    # A person's click: the press, a moment, the release, while the page draws many frames.
    page.once("dialog", lambda dialog: dialog.accept())
    slow_click(page, "#cancel", 300)
    wait_run_status(page, "cancelled", timeout=20_000)
    assert wait_ended(api, response_id)["status"] == "cancelled"


def slow_click(page: Any, selector: str, hold_ms: int) -> None:
    """A press, ``hold_ms``, then the release, on the middle of ``selector``."""
    box = page.locator(selector).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.wait_for_timeout(hold_ms)
    page.mouse.up()


def test_slow_clicks_on_the_list_land_across_its_refreshes(
    page: Any, console_server: ServerProcess, api: httpx.Client
) -> None:
    running = create(api, "count", "n=100 delay=0.1")  # its duration changes at every refresh
    page.goto(console_server.url + "/console")
    row = f"tr[data-id='{running}']"
    page.wait_for_selector(f"{row}[data-status='in_progress']")
    # Held longer than the list's 2 s refresh, so that one comes between press and release.
    slow_click(page, ".tile[data-status='in_progress']", 2500)
    page.wait_for_function("() => document.querySelector('#status-filter').value === 'in_progress'")
    slow_click(page, f"{row} a.run-link", 2500)
    page.wait_for_url(f"**/console#/runs/{running}")
    wait_run_status(page, "in progress")


def test_hostile_agent_output_does_not_execute(
    page: Any, console_server: ServerProcess, api: httpx.Client
) -> None:
    response_id = create(api, "hostile", "<script>window.__pwned = 'input'</script>")
    open_run(page, console_server.url, response_id)
    wait_run_status(page, "completed")
    # The terminal event's JSON holds the whole output. (Picked by its type, not as the last
    # row: "completed" can show before the timeline has drawn that event's row.)
    page.click(".timeline-row:has(.type:text-is('response.completed'))")
    page.wait_for_function(
        "() => document.querySelector('#event-json').textContent.includes('<script>')"
    )
    for link in page.query_selector_all(".output a"):
        link.hover()
    page.hover(".output .md")

    assert page.evaluate("window.__pwned") is None
    output = page.query_selector(".output")
    assert output.query_selector_all("script, img, iframe, svg, b, object, embed") == []
    assert "<script>window.__pwned = 'script tag'</script>" in output.inner_text()
    # ... while the Markdown around the payloads is rendered: a heading, bold, code, a fence.
    assert (
        page.inner_text(".output .md h3") == "Report <script>window.__pwned = 'script tag'</script>"
    )
    bold = page.eval_on_selector_all(".output .md strong", "els => els.map(e => e.textContent)")
    assert "bold <svg onload=\"window.__pwned = 'svg'\"></svg>" in bold
    assert page.inner_text(".output .md p code") == "<iframe srcdoc=x>"
    fence = "</code></pre><script>window.__pwned = 'fence'</script>"
    assert page.inner_text(".output .md pre code") == fence
    links = page.eval_on_selector_all(".output a", "els => els.map(a => [a.href, a.rel])")
    assert links == [["https://example.com/page", "noopener noreferrer nofollow"]]
    assert "click me (javascript:void(window.__pwned='js-link'))" in output.inner_text()
    assert "data (data:text/html,<script>parent.__pwned=1</script>)" in output.inner_text()
    # Not one attribute anywhere in the page is an event handler.
    handlers = page.evaluate(
        "[...document.querySelectorAll('*')].flatMap(el => [...el.attributes])"
        ".filter(a => a.name.startsWith('on')).length"
    )
    assert handlers == 0
    # And were a payload ever to reach the page as markup, the page's Content-Security-Policy
    # would still not run it: no inline script, no handler attribute, no javascript: URL, no
    # string compiled as code (a string timer: eval's check; Playwright's own evaluate is exempt).
    page.evaluate(
        """() => {
        window.__violations = [];
        document.addEventListener('securitypolicyviolation',
          (e) => window.__violations.push(e.violatedDirective));
        const script = document.createElement('script');
        script.textContent = "window.__pwned = 'inline script'";
        document.body.append(script);
        const img = document.createElement('img');
        img.setAttribute('src', 'x');
        img.setAttribute('onerror', "window.__pwned = 'handler attribute'");
        document.body.append(img);
        const link = document.createElement('a');
        link.href = "javascript:window.__pwned = 'javascript: url'";
        document.body.append(link);
        link.click();
        setTimeout("window.__pwned = 'string timer'", 0);
    }"""
    )
    page.wait_for_function("() => window.__violations.length >= 4")
    assert page.evaluate("window.__pwned") is None


def test_a_20000_event_run_page_is_usable_at_once_with_a_bounded_page(
    page: Any, console_server: ServerProcess, api: httpx.Client, artefacts: Path
) -> None:
    # 9 events of the response and its message around the text deltas: 20,000 in all.
    response_id = create(api, "many", "n=19991")
    response = wait_ended(api, response_id, timeout=120)
    meta = api.get(f"/v1/console/runs?ids={response_id}").json()["data"][0]
    assert meta["events"] == 20_000

    started = time.monotonic()
    open_run(page, console_server.url, response_id)
    page.wait_for_function("() => document.querySelector('#output-text').textContent.length > 0")
    output_shown = time.monotonic() - started
    page.wait_for_function(
        "() => document.querySelector('#event-count').textContent === '20000'",
                           timeout=60_000)  # fmt: skip
    timeline_loaded = time.monotonic() - started

    assert plain_text(page) == output_text(response)
    rows = page.eval_on_selector_all(".timeline-row", "els => els.length")
    assert 0 < rows < 100, "only the rows in view are in the page"
    # Scrolling anywhere shows that part of the log: the middle of it, here.
    page.eval_on_selector(".timeline", "el => { el.scrollTop = 10000 * 24; }")
    page.wait_for_selector(".timeline-row .seq >> text=/^10000$/")
    respond = time.monotonic()
    page.evaluate("1")
    round_trip = time.monotonic() - respond
    record(artefacts, "run_of_20000_events", {"output_shown_s": output_shown,
           "timeline_loaded_s": timeline_loaded, "rows_in_page": rows,
           "round_trip_after_s": round_trip})  # fmt: skip


def test_a_run_at_1000_events_per_second_is_followed_to_the_end(
    page: Any, console_server: ServerProcess, api: httpx.Client, artefacts: Path
) -> None:
    open_run(page, console_server.url, create(api, "count", "n=1"))  # a page, then the probe
    page.evaluate(
        """() => { window.__lag = 0; let last = performance.now();
        setInterval(() => { const now = performance.now();
          window.__lag = Math.max(window.__lag, now - last - 50); last = now; }, 50); }"""
    )
    response_id = create(api, "rate", "n=5000 per_second=1000")
    page.evaluate("id => { location.hash = '#/runs/' + id; }", response_id)
    wait_run_status(page, "completed")
    response = api.get(f"/v1/responses/{response_id}").json()
    assert plain_text(page) == output_text(response)
    lag_ms = page.evaluate("window.__lag")
    record(
        artefacts, "live_run_at_1000_events_per_second", {"longest_main_thread_stall_ms": lag_ms}
    )


def test_a_run_page_shows_reasoning_tool_calls_with_arguments_and_outputs_and_each_message(
    page: Any, console_server: ServerProcess, api: httpx.Client
) -> None:
    response_id = create(api, "tools", "what is the weather")
    open_run(page, console_server.url, response_id)
    wait_run_status(page, "completed")

    kinds = page.eval_on_selector_all(".output .item", "els => els.map(e => e.classList[1])")
    assert kinds == ["reasoning", "tool-call", "tool-output", "message", "message"]
    assert "Looking up the weather first." in page.inner_text(".item.reasoning")
    call = page.inner_text(".item.tool-call")
    assert "get_weather" in call and '{"city":"Paris"}' in call
    assert '{"temperature_c":21}' in page.inner_text(".item.tool-output")
    messages = page.eval_on_selector_all(".item.message", "els => els.map(e => e.textContent)")
    assert messages == ["It is 21 °C in Paris.", "A second message."]


def test_a_foreground_run_started_from_the_page_opens_its_page_once_it_has_ended(
    page: Any, console_server: ServerProcess, api: httpx.Client
) -> None:
    page.goto(console_server.url + "/console#/new")
    page.fill("#new-model", "echo")
    page.fill("#new-input", "in the foreground")
    page.uncheck("#new-background")
    page.click("#new-submit")
    page.wait_for_url("**/console#/runs/resp_*")
    wait_run_status(page, "completed")
    response = api.get(f"/v1/responses/{page.url.rsplit('/', 1)[1]}").json()
    assert response["background"] is False
    assert plain_text(page) == "in the foreground"
    assert page.query_selector("#cancel") is None and page.query_selector("#copy-token") is None


def test_the_token_copied_from_a_run_page_resumes_after_its_last_event_and_delete_removes_it(
    page: Any, console_server: ServerProcess, api: httpx.Client
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    response_id = create(api, "count", "n=5")
    wait_ended(api, response_id)
    open_run(page, console_server.url, response_id)
    meta = api.get(f"/v1/console/runs?ids={response_id}").json()["data"][0]
    page.wait_for_function(
        "n => document.querySelector('#connection').textContent === 'ended'"
        " && document.querySelector('#event-count').textContent === n",
        arg=str(meta["events"]),
    )
    page.click("#copy-token")
    page.wait_for_selector("text=copied")
    assert (
        page.evaluate("() => navigator.clipboard.readText()")
        == f"{response_id}:{meta['events'] - 1}"
    )

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete")
    page.wait_for_url(f"{console_server.url}/console#/")
    assert api.get(f"/v1/responses/{response_id}").status_code == 404


def test_a_run_started_from_the_page_opens_its_page(
    page: Any, console_server: ServerProcess, api: httpx.Client
) -> None:
    page.goto(console_server.url + "/console#/new")
    page.fill("#new-model", "echo")
    page.fill("#new-input", "hello from the console")
    page.fill("#new-instructions", "be brief")
    page.click("#new-submit")
    page.wait_for_url("**/console#/runs/resp_*")
    wait_run_status(page, "completed")
    response_id = page.url.rsplit("/", 1)[1]
    response = api.get(f"/v1/responses/{response_id}").json()
    assert response["background"] is True and response["instructions"] == "be brief"
    assert plain_text(page) == "hello from the console"
    assert "be brief" in page.inner_text(".input-items")


def record(artefacts: Path, name: str, figures: dict[str, Any]) -> None:
    """Add measured figures to the artefacts' timings.json (kept for the report, not asserted)."""
    path = artefacts / "timings.json"
    timings = json.loads(path.read_text()) if path.exists() else {}
    timings[name] = figures
    path.write_text(json.dumps(timings, indent=2) + "\n")
    print(name, figures)


def test_a_run_waiting_for_input_is_answered_from_its_page_and_goes_on(
    page: Any, console_server: ServerProcess, api: httpx.Client
) -> None:
    response_id = create(api, "asker", "plan the trip")
    paused = wait_ended(api, response_id)
    assert paused["status"] == "completed" and paused["output"][-1]["type"] == "function_call"
    open_run(page, console_server.url, response_id)
    page.wait_for_selector("#answer")
    assert "Proceed with the plan?" in page.inner_text("form.question")

    page.fill("#answer", "yes")
    page.click("#answer-submit")
    continued = wait_next_run(page, response_id)
    wait_run_status(page, "completed")
    response = wait_ended(api, continued)
    assert response["previous_response_id"] == response_id
    assert output_text(response).endswith("you said yes.")
    assert page.query_selector("#answer") is None  # nothing is pending any more


def test_a_running_run_is_steered_from_its_page_and_its_successor_opens(
    page: Any, console_server: ServerProcess, api: httpx.Client, tmp_path: Path, artefacts: Path
) -> None:
    gate = tmp_path / "gate"
    response_id = create(api, "gated", f"gate={gate}")
    open_run(page, console_server.url, response_id)
    page.wait_for_selector(".output .item.message")  # "first"; the agent waits for the gate
    wait_run_status(page, "in progress")

    page.fill("#steer-input", "also cover the costs")
    page.click("#steer-submit")
    page.wait_for_selector("#steer-note >> text=Accepted")
    page.screenshot(path=str(artefacts / "console-steer.png"))
    gate.touch()  # the agent goes on: its next message is a boundary, where the steer lands
    successor_id = wait_next_run(page, response_id)
    wait_run_status(page, "completed")

    steered = api.get(f"/v1/responses/{response_id}").json()
    assert steered["status"] == "incomplete"
    assert steered["incomplete_details"] == {"reason": "steered"}
    successor = wait_ended(api, successor_id)
    assert successor["previous_response_id"] == response_id
    assert plain_text(page) == output_text(successor) == "also cover the costs"
    assert page.inner_text("dd[data-field=previous]") == response_id
    assert not page.is_visible("#steer")  # an ended run takes no more steering

    # The steered run's own page links to the response that continued it.
    open_run(page, console_server.url, response_id)
    page.wait_for_selector("#successor")
    assert page.inner_text("#successor") == successor_id


def test_without_keys_there_is_no_prompt_and_on_postgresql_each_run_shows_its_replica(
    browser: Any, replicas: tuple[ServerProcess, ServerProcess], tmp_path: Path
) -> None:
    serving, worker = replicas
    executor = httpx.get(f"{worker.url}/healthz").json()["worker"]
    assert executor and executor != httpx.get(f"{serving.url}/healthz").json()["worker"]
    with fresh_page(browser, with_key=False) as page:
        page.goto(serving.url + "/")
        page.wait_for_selector("section.overview")
        assert page.query_selector("#api-key") is None
        assert page.inner_text("#key-state") == ""  # no key, so none to forget either

        with httpx.Client(base_url=serving.url, timeout=30) as api:
            response_id = create(api, "count", "n=3")
        row = f"tr[data-id='{response_id}']"
        page.wait_for_selector(f"{row}[data-status='completed']", timeout=30_000)
        # The replica that executed it, not the one that serves the page.
        assert page.inner_text(f"{row} td.replica") == executor
        page.click(f"{row} a.run-link")
        wait_run_status(page, "completed")
        page.wait_for_function(
            "w => document.querySelector('dd[data-field=replica]').textContent === w", arg=executor
        )

        # A running run executes on the worker, which alone takes steering input: the page
        # served by the other replica says so rather than offer a form that would be refused.
        gate = tmp_path / "gate"
        with httpx.Client(base_url=serving.url, timeout=30) as api:
            running = create(api, "gated", f"gate={gate}")
            open_run(page, serving.url, running)
            page.wait_for_selector(".output .item.message")
            # (Once the worker has claimed it: the page reads the run's replica again meanwhile.)
            page.wait_for_selector(f"#steer-note >> text=executes on another replica ({executor})")
            assert page.is_disabled("#steer-submit")
            refused = api.post(f"/v1/console/runs/{running}/steer", json={"input": "more"})
            assert refused.status_code == 409
            assert refused.json()["error"]["code"] == "steering_not_supported"
            gate.touch()
            wait_run_status(page, "completed")


def test_a_failed_runs_page_shows_its_error_timings_and_attempt(
    page: Any, console_server: ServerProcess, api: httpx.Client
) -> None:
    response_id = create(api, "fail", "the tool broke")
    failed = wait_ended(api, response_id)
    assert failed["status"] == "failed"
    open_run(page, console_server.url, response_id)
    wait_run_status(page, "failed")

    error = failed["error"]
    page.wait_for_selector(".run-error")
    assert page.inner_text(".run-error") == f"{error['code']}: {error['message']}"
    assert "the tool broke" in error["message"]
    page.wait_for_function("() => document.querySelector('#connection').textContent === 'ended'")
    assert page.inner_text("dd[data-field=attempt]") == "1"
    assert page.inner_text("dd[data-field=ended]") not in ("", "—")
    assert page.inner_text("dd[data-field=duration]") != ""
    assert plain_text(page) == output_text(failed) == "partial "


def test_the_time_filter_shows_only_runs_started_in_its_window(
    page: Any, console_server: ServerProcess, api: httpx.Client
) -> None:
    response_id = create(api, "count", "n=1")
    wait_ended(api, response_id)
    row = f"tr[data-id='{response_id}']"
    page.goto(console_server.url + "/console")
    page.select_option("#time-filter", "900")
    page.wait_for_selector(row)

    # Two hours later by the page's clock, the run started before the last hour but within the
    # last day.
    page.clock.set_fixed_time(time.time() + 2 * 3600)
    page.select_option("#time-filter", "3600")
    page.wait_for_selector(row, state="detached")
    page.select_option("#time-filter", "86400")
    page.wait_for_selector(row)


def listed_ids(page: Any) -> list[str]:
    ids: list[str] = page.eval_on_selector_all(
        "table.runs tbody tr", "rows => rows.map(r => r.dataset.id)"
    )
    return ids


def test_the_list_pages_through_older_and_newer_runs_as_the_listing_does(
    page: Any, console_server: ServerProcess, api: httpx.Client
) -> None:
    ids = [create(api, "count", "n=1") for _ in range(21)]  # more than one page of 20
    for response_id in ids:
        wait_ended(api, response_id)
    first = [r["id"] for r in api.get("/v1/responses?limit=20").json()["data"]]
    second = [r["id"] for r in api.get(f"/v1/responses?limit=20&after={first[-1]}").json()["data"]]
    assert ids[-1] == first[0] and ids[0] in second
    page.goto(console_server.url + "/console")
    page.wait_for_function("id => document.querySelector('table.runs tbody tr')?.dataset.id === id",
                           arg=first[0])  # fmt: skip
    assert listed_ids(page) == first
    assert page.is_disabled("text=← Newer")

    page.click("text=Older →")
    page.wait_for_function("id => document.querySelector('table.runs tbody tr')?.dataset.id === id",
                           arg=second[0])  # fmt: skip
    assert listed_ids(page) == second
    page.click("text=← Newer")
    page.wait_for_function("id => document.querySelector('table.runs tbody tr')?.dataset.id === id",
                           arg=first[0])  # fmt: skip
    assert listed_ids(page) == first


def test_an_a2a_task_appears_in_the_list_as_a_run_and_opens_as_one(
    page: Any, console_server: ServerProcess, api: httpx.Client
) -> None:
    message = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage",
               "params": rpc_message("hello from an A2A client")}  # fmt: skip
    answer = rpc(console_server, message, {"Authorization": f"Bearer {KEY}"})
    task_id = answer["result"]["task"]["id"]
    task = wait_ended(api, task_id)

    page.goto(console_server.url + "/console")
    row = f"tr[data-id='{task_id}']"
    page.wait_for_selector(f"{row}[data-status='{task['status']}']")
    assert page.inner_text(f"{row} td.input") == "hello from an A2A client"
    page.click(f"{row} a.run-link")
    wait_run_status(page, task["status"])
    assert plain_text(page) == output_text(task)
    assert "hello from an A2A client" in page.inner_text(".input-items")


def test_the_tail_and_sdk_snippets_of_a_run_page_continue_where_the_page_is(
    page: Any, console_server: ServerProcess, api: httpx.Client, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    response_id = create(api, "gated", f"gate={gate}")
    open_run(page, console_server.url, response_id)
    page.wait_for_selector(".output .item.message")
    # The agent waits at its gate: the page has every event so far once it shows the server's
    # count of them.
    deadline = time.monotonic() + 10
    while (
        int(page.inner_text("#event-count"))
        != (api.get(f"/v1/console/runs?ids={response_id}").json()["data"][0]["events"])
    ):
        assert time.monotonic() < deadline, "the page never caught up with the run"
        time.sleep(0.05)
    shown = int(page.inner_text("#event-count"))
    tail, sdk = page.eval_on_selector_all(".snippet", "els => els.map(e => e.textContent)")
    assert tail == f"outlast tail {response_id} --from {shown} --url {console_server.url}"
    assert f'client.resume("{response_id}:{shown - 1}")' in sdk
    assert not key_shown(page)  # the snippets leave the key out
    gate.touch()
    wait_ended(api, response_id)

    env = {**os.environ, "OUTLAST_API_KEY": KEY}
    command = [sys.executable, "-m", "outlast", *tail.split()[1:], "--json"]
    tailed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert tailed.returncode == 0, tailed.stderr
    sequence = [json.loads(line)["sequence_number"] for line in tailed.stdout.splitlines()]
    total = api.get(f"/v1/console/runs?ids={response_id}").json()["data"][0]["events"]
    assert sequence == list(range(shown, total))

    script = sdk.replace('api_key="…"', f"api_key={KEY!r}")
    resumed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    types = resumed.stdout.split()
    assert len(types) == total - shown and types[-1] == "response.completed"


def test_steering_input_for_a_run_that_ends_waiting_for_input_goes_first_in_its_answer(
    page: Any, console_server: ServerProcess, api: httpx.Client, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    response_id = create(api, "lookup", f"gate={gate}")
    open_run(page, console_server.url, response_id)
    page.wait_for_selector(".output .item.tool-call")  # it waits at its gate, the call made
    page.fill("#steer-input", "and mind the budget")
    page.click("#steer-submit")
    page.wait_for_selector("#steer-note >> text=Accepted")
    gate.touch()  # it ends waiting for the lookup's output: no boundary, so the input waits

    page.wait_for_selector("#answer")
    page.wait_for_selector("text=Your steering input waits for the answer below")
    page.fill("#answer", '{"found": true}')
    page.click("#answer-submit")
    continued = wait_next_run(page, response_id)
    wait_run_status(page, "completed")

    response = wait_ended(api, continued)
    assert response["previous_response_id"] == response_id
    items = api.get(f"/v1/responses/{continued}/input_items?order=asc").json()["data"]
    assert [item["type"] for item in items] == ["message", "function_call_output"]
    assert items[0]["content"][0]["text"] == "and mind the budget"
    assert items[1]["output"] == '{"found": true}'
    assert "and mind the budget" in page.inner_text(".input-items")


# Markdown as it streams: every construct, and the ones a blank line does not end (a fence).
STREAMED_MARKDOWN = [
    HOSTILE_TEXT,
    "# Title\n\nA paragraph with **bold\nacross lines** and `code`.\n\n"
    "```python\ndef f():\n\n    return 1\n```\n\n- one\n- two\n  more of two\n\n"
    "1. first\n2. second\n\n> quoted\n>\n> still quoted\n\n---\n\nthe end\n\n",
    "- an item\n  ```\n  fenced in the item\n\n  after a blank\n  ```\n\ntail",
    "windows\r\n\r\nline endings\r\n```\r\ncode\r\n\r\n```\r\n",
    "```\nan unclosed fence\n\nthat streams on",
]


def test_a_streaming_messages_markdown_is_redrawn_only_where_it_grew_and_as_a_whole_render(
    page: Any, console_server: ServerProcess
) -> None:
    page.goto(console_server.url + "/console")
    page.wait_for_selector("section.overview")
    # Each text fed in pieces of several sizes: after every piece the growing rendering is
    # exactly the rendering of the whole text so far.
    mismatches = page.evaluate(
        """async (texts) => {
        const { render, GrowingMarkdown } = await import('/console/static/markdown.js');
        const mismatches = [];
        for (const text of texts) for (const size of [1, 2, 3, 7, 20]) {
          const growing = new GrowingMarkdown();
          for (let end = size; end < text.length + size; end += size) {
            const prefix = text.slice(0, end);
            if (growing.render(prefix).outerHTML !== render(prefix).outerHTML) {
              mismatches.push([size, prefix]);
              break;
            }
          }
        }
        return mismatches;
    }""",
        STREAMED_MARKDOWN,
    )
    assert mismatches == []
    # ... while what came before the last blank line keeps its nodes, not drawn again.
    kept = page.evaluate(
        """async () => {
        const { GrowingMarkdown } = await import('/console/static/markdown.js');
        const growing = new GrowingMarkdown();
        growing.render('# Title\\n\\nfirst paragraph\\n\\nsecond');
        const [title, first] = growing.root.children;
        growing.render('# Title\\n\\nfirst paragraph\\n\\nsecond, longer\\n\\nthird');
        return [growing.root.children[0] === title, growing.root.children[1] === first,
                growing.root.children.length];
    }"""
    )
    assert kept == [True, True, 4]
