"""Prometheus metrics at ``/metrics``: scraped before and after a workload, they move as they should.

Every test runs a real ``outlast serve`` and drives it with the ``openai`` SDK; the scrape is parsed
with ``prometheus_client``'s own parser. The counters are the process's, not the store's: SQLite
is enough, except for the worker replica, which needs a shared PostgreSQL database.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from databases import only_on
from helpers import wait_ended
from serverproc import ServerProcess


def scrape(server: ServerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``, keyed by name and labels."""
    answer = httpx.get(f"{server.url}/metrics", timeout=5)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@only_on("sqlite")
def test_metrics_move_with_a_workload(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server(agent="scripted_agents:router").start()
    before = scrape(server)
    with server.client() as client:
        done = [
            client.responses.create(model="count", input="n=20", background=True).id
            for _ in range(3)
        ]
        failed = client.responses.create(model="fail", input="boom", background=True).id
        blocked = client.responses.create(model="block", input="wait", background=True).id
        for rid in done:
            assert wait_ended(client, rid) == "completed"
        assert wait_ended(client, failed) == "failed"
        # Streamed from the start, then resumed after event 3.
        streamed = [e.sequence_number for e in client.responses.retrieve(done[0], stream=True)]
        resumed = [
            e.sequence_number
            for e in client.responses.retrieve(done[0], stream=True, starting_after=3)
        ]
        assert resumed == streamed[4:]
        client.responses.cancel(blocked)
        assert wait_ended(client, blocked) == "cancelled"
    after = scrape(server)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("outlast_runs_created_total", background="true") == 5
    assert moved("outlast_runs_finished_total", status="completed") == 3
    assert moved("outlast_runs_finished_total", status="failed") == 1
    assert moved("outlast_runs_finished_total", status="cancelled") == 1
    assert moved("outlast_run_duration_seconds_count", status="completed") == 3
    assert value(after, "outlast_runs", state="in_progress") == 0
    assert value(after, "outlast_runs", state="queued") == 0
    assert value(after, "outlast_queue_depth") == 0
    # Each completed count run: created, in_progress, 20 deltas and their item/part events, done.
    assert moved("outlast_events_written_total") >= 3 * 20
    assert moved("outlast_events_delivered_total") == len(streamed) + len(resumed)
    assert moved("outlast_streams_opened_total") == 2
    assert moved("outlast_stream_resumes_total") == 1
    assert value(after, "outlast_streams_open") == 0
    assert moved("outlast_store_commit_batch_events_count") >= 1
    assert moved("outlast_store_commit_batch_events_sum") == moved("outlast_events_written_total")
    assert moved("outlast_store_commit_seconds_count") == moved(
        "outlast_store_commit_batch_events_count"
    )


@only_on("sqlite")
def test_open_streams_and_running_runs_are_gauges(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(agent="scripted_agents:router").start()
    with server.client() as client:
        rid = client.responses.create(model="block", input="wait", background=True).id
        stream = client.responses.retrieve(rid, stream=True)
        next(iter(stream))  # the stream is open and has delivered its first event
        samples = scrape(server)
        assert value(samples, "outlast_streams_open") == 1
        assert value(samples, "outlast_runs", state="in_progress") == 1
        client.responses.cancel(rid)
        assert [e.type for e in stream][-1] == "response.incomplete"
    samples = scrape(server)
    assert value(samples, "outlast_streams_open") == 0
    assert value(samples, "outlast_runs", state="in_progress") == 0


@only_on("sqlite")
def test_metrics_can_be_turned_off(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server(args=["--no-metrics"]).start()
    assert httpx.get(f"{server.url}/metrics", timeout=5).status_code == 404


@only_on("sqlite")
def test_metrics_need_no_api_key(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server(args=["--api-key", "secret"]).start()
    assert "outlast_runs_created_total" in httpx.get(f"{server.url}/metrics", timeout=5).text


@only_on("postgres")  # replicas with roles share a PostgreSQL database
def test_a_worker_replica_serves_metrics(make_server: Callable[..., ServerProcess]) -> None:
    api = make_server(agent="scripted_agents:router", args=["--role", "api"]).start()
    worker = make_server(agent="scripted_agents:router", args=["--role", "worker"]).start()
    before = scrape(worker)
    with api.client() as client:
        rid = client.responses.create(model="count", input="n=5", background=True).id
        assert wait_ended(client, rid) == "completed"
    after = scrape(worker)
    assert (
        value(after, "outlast_runs_finished_total", status="completed")
        - value(before, "outlast_runs_finished_total", status="completed")
        == 1
    )
    assert httpx.get(f"{worker.url}/v1/responses/{rid}", timeout=5).status_code == 404
