"""delivery: events posted over HTTP -> delivered in the Graph API sandbox; metabridge and the official SDK.

Every part is a real process talking HTTP over loopback (127.0.0.1 only). Meta is played by one
``metabridge sandbox`` process, shared by every run, so the cost of "Meta" is outside the measured
service on every side:

- **SQLite**: one ``metabridge serve`` process (REST API + its in-process delivery worker) on a SQLite
  file, ``METABRIDGE_GRAPH_URL`` pointing at the sandbox process.
- **PostgreSQL**: ``metabridge serve --no-worker`` + ``--workers`` (2) ``metabridge worker`` processes on a
  fresh database (the server on 127.0.0.1:5432, or a throwaway one as in the tests).
- **SDK** (``facebook-business``): what an integrator does without metabridge. The same incoming events
  are built into SDK objects (:mod:`benchmarks.sdk_baseline`) and sent with ``EventRequest.execute()``
  to the same sandbox, sequentially: *batched* (1,000 events a request) and *per event* (one request per
  event, as a webhook handler calling Meta inline would). In memory only: nothing is durable or retried.

Per metabridge deployment (service settings at their defaults, API key stored in the database as
``metabridge apikey create`` makes it, log level warning), after a warm-up of 2,000 other events:

1. **throughput**: ``--events`` synthetic events (:mod:`benchmarks.synthetic`, N/5 people, pre-encoded)
   posted as ``{"events": [...]}`` bodies of ``--body-events`` (1,000) by ``--clients`` (2) keep-alive
   client threads, as fast as they are accepted. *End to end* = first POST -> the sandbox has received
   every event the service queued (its ``/_sandbox/stats``, polled every 50 ms); *ingest* = first POST
   -> last 202.
2. **latency**: a fixed offered rate (``--rate`` 1,000 events/s for ``--latency-seconds`` 10) as POSTs of
   ``--request-events`` (10) events sent on schedule by an open-loop generator (a free sender thread
   takes each request when it is due, so a slow answer never delays the next one); delivery runs
   meanwhile. Accept latency = request written -> 202 read; also how far sends fell behind schedule.
3. **single events**: ``--single-events`` (2,000) POSTs of one event each by 4 closed-loop clients.

CPU seconds of every process (``/proc``) are recorded per phase, with how busy the whole machine was:
on a shared machine the CPU time per event is the figure that does not depend on the neighbours.
``--profile`` runs the service processes with cProfile on every thread, timed by each thread's CPU clock
(figures are inflated by the profiler, shares are what counts), and prints where their CPU goes.

Run: ``python -m benchmarks delivery [--events N] [--skip-postgres] [--skip-sdk] [--profile]``.
Results: ``benchmarks/results/delivery.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import itertools
import json
import os
import pickle
import platform
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks.synthetic import DEFAULT_SEED, generate_events

NAME = "delivery"
ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / f"{NAME}.json"
CACHE = RESULTS.parent / "cache"

#: Issue goals (SQLite deployment).
GOAL_E2E_EVENTS_PER_S = 5_000
GOAL_P99_MS = 50.0

WARMUP_EVENTS = 2_000
POLL_S = 0.05
ACCESS_TOKEN = "bench-token"
PIXELS = {"sqlite": "1000000001", "postgresql": "1000000002", "sdk": "1000000003", "sdk_single": "1000000004"}
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------------------------
# Data: synthetic events, timestamps anchored to the current hour (Meta's window is 7 days), cached.


def _events(label: str, n: int, seed: int, first_person_id: int) -> list[dict]:
    anchor = int(time.time() * 1000) // 3_600_000 * 3_600_000
    source = Path(__file__).with_name("synthetic.py").stat()
    path = CACHE / f"{NAME}-{label}-{n}-{seed}-{anchor}-{int(source.st_mtime)}.pickle"
    if path.exists():
        return pickle.loads(path.read_bytes())
    events = generate_events(n, max(1, n // 5), seed=seed, now_ms=anchor, first_person_id=first_person_id)
    CACHE.mkdir(parents=True, exist_ok=True)
    for old in CACHE.glob(f"{NAME}-{label}-*.pickle"):
        old.unlink(missing_ok=True)
    path.write_bytes(pickle.dumps(events, protocol=pickle.HIGHEST_PROTOCOL))
    return events


def _bodies(events: Sequence[dict], size: int) -> list[tuple[bytes, int]]:
    """``({"events": [...]}`` bytes, event count) per request; a single event is posted as itself."""
    if size == 1:
        return [(orjson.dumps(e), 1) for e in events]
    return [(orjson.dumps({"events": list(events[i:i + size])}), len(events[i:i + size]))
            for i in range(0, len(events), size)]


# ------------------------------------------------------------------------------------------------------
# Processes and CPU accounting


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu_s(pid: int) -> float:
    """utime + stime of a process (all threads) in seconds; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(values) - values[3] - values[4], sum(values)


def _postgres_backends_cpu_s(database: str) -> float:
    """CPU seconds of the PostgreSQL backends serving ``database`` (their process title names it)."""
    total, needle = 0.0, f" {database} ".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "cmdline").read_bytes():
                    total += _cpu_s(int(entry.name))
            except OSError:
                continue
    return total


class Proc:
    """A subprocess logging to a file; stopped with SIGTERM (then killed)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL)

    def check(self) -> None:
        if self.popen.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} exited ({self.popen.returncode}):\n{tail}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


def _metabridge(profile: bool, *args: str) -> list[str]:
    if profile:  # this module's sampling wrapper around the same CLI (see _profiled_cli)
        return [sys.executable, "-m", "benchmarks.delivery", "--profiled-cli", *args]
    return [sys.executable, "-m", "metabridge.cli.main", *args]


def _wait_http(url: str, proc: Proc, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.check()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{proc.name} did not answer {url} within {timeout:.0f} s")


class CpuMeter:
    """CPU seconds of the given processes (and PostgreSQL's backends) over a block; machine busy share."""

    def __init__(self, procs: Sequence[Proc], database: str | None = None) -> None:
        self.procs, self.database = procs, database

    def _read(self) -> dict[str, float]:
        out = {p.name: _cpu_s(p.popen.pid) for p in self.procs}
        out["benchmark client"] = time.process_time()
        if self.database:
            out["postgres backends"] = _postgres_backends_cpu_s(self.database)
        return out

    def __enter__(self) -> CpuMeter:
        self._start, self._ticks, self._wall = self._read(), _machine_ticks(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._wall
        end, (busy1, total1) = self._read(), _machine_ticks()
        self.cpu_s = {k: round(v - self._start.get(k, 0.0), 2) for k, v in end.items()}
        busy0, total0 = self._ticks
        cores = os.cpu_count() or 1
        busy_s = (busy1 - busy0) / CLK_TCK
        self.result = {
            "wall_s": round(self.wall_s, 2),
            "cpu_s": self.cpu_s,
            "machine_busy_share": round((busy1 - busy0) / max(1, total1 - total0), 3),
            # everything else running on the machine meanwhile (other users of a shared machine)
            "others_share": round(max(0.0, busy_s - sum(self.cpu_s.values())) / max(1e-9, self.wall_s * cores), 3),
        }


def _wait_quiet(max_wait_s: float, threshold: float = 0.15) -> float:
    """Wait up to ``max_wait_s`` for the machine to be nearly idle; returns the busy share seen last."""
    deadline = time.monotonic() + max_wait_s
    while True:
        busy0, total0 = _machine_ticks()
        time.sleep(1.0)
        busy1, total1 = _machine_ticks()
        share = (busy1 - busy0) / max(1, total1 - total0)
        if share < threshold or time.monotonic() >= deadline:
            return share


# ------------------------------------------------------------------------------------------------------
# Clients


@dataclass
class Ingested:
    posted: int = 0
    accepted: int = 0
    pending: int = 0
    skipped: int = 0
    deduplicated: int = 0
    rejected: int = 0

    def add(self, answer: dict[str, Any], posted: int) -> None:
        self.posted += posted
        for key in ("accepted", "pending", "skipped", "deduplicated"):
            setattr(self, key, getattr(self, key) + answer[key])
        self.rejected += len(answer["rejected"])


@dataclass
class Service:
    """A running metabridge deployment, seen from the client."""

    api: str
    sandbox: str
    pixel_id: str
    procs: list[Proc]
    api_key: str
    database: str | None = None
    connection_id: int = 0
    delivered_base: int = 0
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"}

    @property
    def events_path(self) -> str:
        return f"/v1/connections/{self.connection_id}/events"

    def client(self, timeout: float = 120) -> httpx.Client:
        return httpx.Client(base_url=self.api, headers=self.headers, timeout=timeout)


def _received(http: httpx.Client, sandbox: str, pixel_id: str) -> int:
    stats = http.get(f"{sandbox}/_sandbox/stats").json()
    return int(stats.get("pixels", {}).get(pixel_id, {}).get("live", 0))


def _wait_delivered(svc: Service, expected: int, timeout: float = 300.0) -> float:
    """Poll the sandbox until it received ``expected`` more events; returns the perf_counter time seen."""
    deadline = time.perf_counter() + timeout
    with httpx.Client(timeout=30) as http:
        while True:
            got = _received(http, svc.sandbox, svc.pixel_id) - svc.delivered_base
            now = time.perf_counter()
            if got >= expected:
                svc.delivered_base += got
                return now
            for proc in svc.procs:
                proc.check()
            if now > deadline:
                raise TimeoutError(f"only {got:,} of {expected:,} events delivered after {timeout:.0f} s")
            time.sleep(POLL_S)


def _percentiles(values_s: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values_s)
    if not ordered:
        return {}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))] * 1000, 2)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": at(1.0)}


def _run_threads(count: int, target: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            target(index)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _post_closed_loop(svc: Service, bodies: list[tuple[bytes, int]], clients: int) -> dict[str, Any]:
    """Every body posted as fast as answered by ``clients`` keep-alive threads."""
    order, lock, totals = itertools.count(), threading.Lock(), Ingested()
    latencies: list[float] = []
    marks: list[float] = []

    def client(_: int) -> None:
        with svc.client() as http:
            http.get("/health")
            while (index := next(order)) < len(bodies):
                body, size = bodies[index]
                started = time.perf_counter()
                answer = http.post(svc.events_path, content=body)
                done = time.perf_counter()
                if answer.status_code != 202:
                    raise RuntimeError(f"POST {svc.events_path}: {answer.status_code} {answer.text[:300]}")
                with lock:
                    totals.add(answer.json(), size)
                    latencies.append(done - started)
                    marks.extend((started, done))

    _run_threads(clients, client)
    return {"ingested": totals, "first": min(marks), "last": max(marks), "latency_ms": _percentiles(latencies)}


def _post_open_loop(svc: Service, bodies: list[tuple[bytes, int]], rate: float, senders: int = 8) -> dict[str, Any]:
    """Request ``i`` is due at ``t0 + i * size / rate``; a free sender thread sends it when due."""
    interval = bodies[0][1] / rate
    work: queue.SimpleQueue = queue.SimpleQueue()
    lock, totals, statuses = threading.Lock(), Ingested(), Counter()
    samples: list[tuple[float, float, float]] = []  # (due, written, answered)
    ready = threading.Barrier(senders + 1)

    def sender(_: int) -> None:
        with svc.client(timeout=60) as http:
            http.get("/health")  # keep-alive connection open before the clock starts
            ready.wait()
            while (item := work.get()) is not None:
                index, due = item
                started = time.perf_counter()
                answer = http.post(svc.events_path, content=bodies[index][0])
                done = time.perf_counter()
                with lock:
                    statuses[answer.status_code] += 1
                    samples.append((due, started, done))
                    if answer.status_code == 202:
                        totals.add(answer.json(), bodies[index][1])

    def schedule() -> None:
        ready.wait()
        t0 = time.perf_counter() + 0.05
        for index in range(len(bodies)):
            due = t0 + index * interval
            if (delay := due - time.perf_counter()) > 0:
                time.sleep(delay)
            work.put((index, due))
        for _ in range(senders):
            work.put(None)

    scheduler = threading.Thread(target=schedule)
    scheduler.start()
    _run_threads(senders, sender)
    scheduler.join()
    span = max(s[0] for s in samples) - min(s[0] for s in samples) + interval
    return {
        "requests": len(samples),
        "events_per_request": bodies[0][1],
        "offered_events_per_s": round(totals.posted / span, 1),
        "duration_s": round(span, 2),
        "statuses": {str(k): v for k, v in statuses.items()},
        "ingested": totals,
        "latency_ms": _percentiles([done - written for _, written, done in samples]),
        "behind_schedule_ms": _percentiles([written - due for due, written, _ in samples]),
        "last": max(s[2] for s in samples),
    }


# ------------------------------------------------------------------------------------------------------
# One metabridge deployment


def _measure(svc: Service, args: argparse.Namespace) -> dict[str, Any]:
    """Warm-up, throughput, latency and single-event phases against one running deployment."""
    with svc.client() as http:
        answer = http.post("/v1/connections", json={"name": "bench", "pixel_id": svc.pixel_id,
                                                    "access_token": ACCESS_TOKEN})
        if answer.status_code != 201:
            raise RuntimeError(f"cannot create a connection: {answer.status_code} {answer.text}")
        svc.connection_id = answer.json()["id"]
        svc.delivered_base = _received(http, svc.sandbox, svc.pixel_id)

    warm = _post_closed_loop(svc, _bodies(_events("warmup", WARMUP_EVENTS, DEFAULT_SEED + 1, 10_000_000), 1_000), 1)
    _wait_delivered(svc, warm["ingested"].pending)

    out: dict[str, Any] = {}
    bodies = _bodies(_events("throughput", args.events, DEFAULT_SEED, 0), args.body_events)
    with CpuMeter(svc.procs, svc.database) as cpu:
        posted = _post_closed_loop(svc, bodies, args.clients)
        delivered_at = _wait_delivered(svc, posted["ingested"].pending)
    ingested: Ingested = posted["ingested"]
    e2e_s, ingest_s = delivered_at - posted["first"], posted["last"] - posted["first"]
    service_cpu = sum(v for k, v in cpu.cpu_s.items() if k not in ("benchmark client", "sandbox"))
    out["throughput"] = {
        "events": ingested.posted, "body_events": args.body_events, "clients": args.clients,
        "ingested": ingested.__dict__, "delivered": ingested.pending,
        "ingest_s": round(ingest_s, 3), "ingest_events_per_s": round(ingested.posted / ingest_s, 1),
        "e2e_s": round(e2e_s, 3), "e2e_events_per_s": round(ingested.posted / e2e_s, 1),
        "delivered_events_per_s": round(ingested.pending / e2e_s, 1),
        "drain_after_last_accept_s": round(delivered_at - posted["last"], 3),
        "post_latency_ms": posted["latency_ms"],
        "service_cpu_us_per_event": round(service_cpu / ingested.posted * 1e6, 1),
        "cpu": cpu.result,
    }

    events = _events("latency", int(args.rate * args.latency_seconds), DEFAULT_SEED + 2, 20_000_000)
    with CpuMeter(svc.procs, svc.database) as cpu:
        latency = _post_open_loop(svc, _bodies(events, args.request_events), args.rate)
        delivered_at = _wait_delivered(svc, latency["ingested"].pending)
    latency["drain_after_last_answer_s"] = round(delivered_at - latency.pop("last"), 3)
    latency["ingested"] = latency["ingested"].__dict__
    latency["cpu"] = cpu.result
    out["latency"] = latency

    events = _events("single", args.single_events, DEFAULT_SEED + 3, 30_000_000)
    with CpuMeter(svc.procs, svc.database) as cpu:
        single = _post_closed_loop(svc, _bodies(events, 1), 4)
        _wait_delivered(svc, single["ingested"].pending)
    out["single"] = {
        "requests": single["ingested"].posted, "clients": 4,
        "requests_per_s": round(single["ingested"].posted / (single["last"] - single["first"]), 1),
        "latency_ms": single["latency_ms"], "cpu": cpu.result,
    }
    with svc.client() as http:
        stats = http.get(f"/v1/connections/{svc.connection_id}/stats").json()
    out["by_status"], out["meta_requests"] = stats["by_status"], stats["requests"]
    return out


def _service_env(data_dir: Path, port: int, graph_url: str, database_url: str | None) -> dict[str, str]:
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith("METABRIDGE_")}
    env.update({"METABRIDGE_DATA_DIR": str(data_dir), "METABRIDGE_SECRET_KEY": Fernet.generate_key().decode(),
                "METABRIDGE_HOST": "127.0.0.1", "METABRIDGE_PORT": str(port), "METABRIDGE_GRAPH_URL": graph_url,
                "METABRIDGE_LOG_LEVEL": "warning"})
    if database_url:
        env["METABRIDGE_DATABASE_URL"] = database_url
    return env


def _stored_api_key(env: dict[str, str]) -> str:
    """A key stored in the database (as users get them), not the configuration's shortcut key."""
    done = subprocess.run(_metabridge(False, "apikey", "create", "--name", "bench"), env=env, cwd=ROOT,
                          capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def run_sqlite(args: argparse.Namespace, work: Path, sandbox: Proc, sandbox_url: str) -> dict[str, Any]:
    port = _free_port()
    env = _service_env(work / "sqlite", port, sandbox_url, None)
    key = _stored_api_key(env)
    with contextlib.ExitStack() as stack:
        serve = Proc("serve", _metabridge(args.profile, "serve"), env, work)
        stack.callback(serve.stop)
        _wait_http(f"http://127.0.0.1:{port}/health", serve)
        svc = Service(f"http://127.0.0.1:{port}", sandbox_url, PIXELS["sqlite"], [serve, sandbox], key)
        result = _measure(svc, args)
    result["setup"] = "metabridge serve (API + in-process worker), SQLite; Meta = metabridge sandbox process"
    return result


def run_postgres(args: argparse.Namespace, work: Path, sandbox: Proc, sandbox_url: str) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("_bench_postgres", ROOT / "tests" / "_postgres.py")
    assert spec is not None and spec.loader is not None
    pg = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pg)
    port = _free_port()
    with pg.postgres_server() as server, pg.fresh_database(server) as database_url, contextlib.ExitStack() as stack:
        env = _service_env(work / "pg", port, sandbox_url, database_url)
        key = _stored_api_key(env)  # also migrates the schema before any worker starts
        procs = [Proc("serve --no-worker", _metabridge(args.profile, "serve", "--no-worker"), env, work)]
        procs += [Proc(f"worker-{i + 1}", _metabridge(args.profile, "worker"), env, work) for i in range(args.workers)]
        for proc in procs:
            stack.callback(proc.stop)
        _wait_http(f"http://127.0.0.1:{port}/health", procs[0])
        svc = Service(f"http://127.0.0.1:{port}", sandbox_url, PIXELS["postgresql"], [*procs, sandbox], key,
                      database=database_url.rsplit("/", 1)[1])
        result = _measure(svc, args)
    result["setup"] = (f"metabridge serve --no-worker + {args.workers} metabridge worker processes, PostgreSQL; "
                       "Meta = metabridge sandbox process")
    return result


# ------------------------------------------------------------------------------------------------------
# The SDK


def run_sdk(args: argparse.Namespace, sandbox: Proc, sandbox_url: str) -> dict[str, Any]:
    """``EventRequest.execute()`` from one thread: batches of 1,000, then one request per event."""
    from facebook_business.adobjects.serverside.event_request import EventRequest
    from facebook_business.api import FacebookAdsApi
    from facebook_business.exceptions import FacebookRequestError
    from facebook_business.session import FacebookSession

    from benchmarks.sdk_baseline import MAX_EVENTS_PER_REQUEST, PARTNER_AGENT, SdkBaseline

    session = FacebookSession(access_token=ACCESS_TOKEN)
    session.GRAPH = sandbox_url  # this session only
    previous = FacebookAdsApi.get_default_api()
    FacebookAdsApi.set_default_api(FacebookAdsApi(session))

    refused: Counter[str] = Counter()

    def execute(pixel_id: str, batch: list[Any]) -> int:
        """One request; as an integrator must, drop events the SDK's normalize() refuses and send the rest."""
        try:
            return EventRequest(pixel_id=pixel_id, events=batch, partner_agent=PARTNER_AGENT).execute().events_received
        except FacebookRequestError as exc:  # "Meta" refused the whole request
            refused[f"graph:{exc.api_error_code()}"] += len(batch)
            return 0
        except (TypeError, ValueError):
            good = []
            for event in batch:
                try:
                    event.normalize()
                    good.append(event)
                except (TypeError, ValueError):
                    refused["normalize"] += 1
            return execute(pixel_id, good) if good else 0

    def send_all(pixel_id: str, raw: Sequence[dict], per_request: int) -> dict[str, Any]:
        baseline, latencies, received = SdkBaseline(pixel_id), [], 0
        with CpuMeter([sandbox]) as cpu:
            started = time.perf_counter()
            built = [e for e in map(baseline.event, raw) if e is not None]
            for i in range(0, len(built), per_request):
                sent = time.perf_counter()
                received += execute(pixel_id, built[i:i + per_request])
                latencies.append(time.perf_counter() - sent)
            seconds = time.perf_counter() - started
        return {"events": len(raw), "delivered": received, "requests": len(latencies),
                "refused": sum(baseline.rejected_events.values()) + sum(refused.values()),
                "values_left_out": dict(baseline.dropped_values), "seconds": round(seconds, 3),
                "events_per_s": round(received / seconds, 1), "request_latency_ms": _percentiles(latencies),
                "cpu": cpu.result}

    try:
        send_all(PIXELS["sdk"], _events("warmup", WARMUP_EVENTS, DEFAULT_SEED + 1, 10_000_000), MAX_EVENTS_PER_REQUEST)
        refused.clear()
        batched = send_all(PIXELS["sdk"], _events("throughput", args.events, DEFAULT_SEED, 0), MAX_EVENTS_PER_REQUEST)
        refused.clear()
        single = send_all(PIXELS["sdk_single"], _events("single", args.single_events, DEFAULT_SEED + 3, 30_000_000), 1)
    finally:
        FacebookAdsApi.set_default_api(previous)
    return {"setup": "facebook-business EventRequest.execute(), one thread, in memory (not durable, no retry)",
            "batched": batched, "per_event": single}


# ------------------------------------------------------------------------------------------------------
# Sampling profiler (--profile): ``python -m benchmarks.delivery --profiled-cli serve ...``


def _profiled_cli(argv: list[str]) -> None:
    """Run the metabridge CLI with cProfile on every thread, timed by each thread's own CPU clock.

    ``serve`` and ``worker`` stop cleanly on SIGTERM; then the merged profile (CPU seconds per function,
    all threads) is printed to the process's log as ``PROFILE`` lines.
    """
    import cProfile
    import io
    import pstats

    from metabridge.cli.main import app

    profiles: list[cProfile.Profile] = []
    bootstrap = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def profiled_bootstrap(thread: threading.Thread) -> None:  # around run(), also where subclasses override it
        profile = cProfile.Profile(time.thread_time)
        profiles.append(profile)
        profile.enable()
        try:
            bootstrap(thread)
        finally:
            profile.disable()

    def report() -> None:
        stats = pstats.Stats(profiles[0], stream=(out := io.StringIO()))
        for profile in profiles[1:]:
            stats.add(profile)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(70)
        text = out.getvalue().replace(str(ROOT) + "/", "").replace(sys.prefix + "/", "")
        print("\n".join(f"PROFILE {line}" for line in text.splitlines() if line.strip()), flush=True)

    threading.Thread._bootstrap_inner = profiled_bootstrap  # type: ignore[attr-defined]
    main = cProfile.Profile(time.thread_time)
    profiles.append(main)
    # uvicorn re-raises a captured SIGTERM after its shutdown: make that an exit that runs ``finally``
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.argv = ["metabridge", *argv]
    main.enable()
    try:
        app()
    finally:
        main.disable()
        report()


def _profiles(work: Path) -> dict[str, list[str]]:
    found = {}
    for log in sorted(work.glob("*.log")):
        lines = [line[8:] for line in log.read_text(errors="replace").splitlines() if line.startswith("PROFILE ")]
        if lines:
            found[log.stem] = lines
    return found


# ------------------------------------------------------------------------------------------------------
# Report


def _print(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 140))
    runs = report["runs"]
    table = Table(title=f"delivery: HTTP ingest -> delivered in the Graph API sandbox ({os.cpu_count()} cores, loopback)")
    for column in ("run", "events/s end to end", "ingest events/s", "service CPU µs/event",
                   "accept ms p50 / p99 at 1,000/s", "one-event POSTs/s", "POST ms p50 / p99"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for key, label in (("sqlite", "metabridge, SQLite (serve)"),
                       ("postgresql", f"metabridge, PostgreSQL (API + {report['meta']['workers']} workers)")):
        if key not in runs:
            continue
        tp, lat, single = runs[key]["throughput"], runs[key]["latency"]["latency_ms"], runs[key]["single"]
        table.add_row(label, f"{tp['delivered_events_per_s']:,.0f}", f"{tp['ingest_events_per_s']:,.0f}",
                      f"{tp['service_cpu_us_per_event']:.0f}", f"{lat['p50']:.1f} / {lat['p99']:.1f}",
                      f"{single['requests_per_s']:,.0f}",
                      f"{single['latency_ms']['p50']:.1f} / {single['latency_ms']['p99']:.1f}")
    if "sdk" in runs:
        batched, single = runs["sdk"]["batched"], runs["sdk"]["per_event"]
        table.add_row("SDK execute(), 1,000 a request", f"{batched['events_per_s']:,.0f}", "—", "—", "—", "—", "—")
        table.add_row("SDK execute(), one per event", f"{single['events_per_s']:,.0f}", "—", "—", "—",
                      f"{single['events_per_s']:,.0f}",
                      f"{single['request_latency_ms']['p50']:.1f} / {single['request_latency_ms']['p99']:.1f}")
    console.print(table)
    for goal in report["goals"]:
        mark = "[green]PASS[/green]" if goal["pass"] else "[red]MISS[/red]"
        console.print(f"goal {goal['goal']}: {goal['measured']} {mark}")
    for key, run in runs.items():
        phases = [("batched", run["batched"]["cpu"]), ("per event", run["per_event"]["cpu"])] if key == "sdk" else \
            [(p, run[p]["cpu"]) for p in ("throughput", "latency", "single")]
        for phase, cpu in phases:
            by_proc = ", ".join(f"{name} {secs:.1f}" for name, secs in cpu["cpu_s"].items())
            console.print(f"CPU s {key}/{phase} ({cpu['wall_s']:.1f} s wall, machine {cpu['machine_busy_share']:.0%} "
                          f"busy, others {cpu['others_share']:.0%} of all cores): {by_proc}")
    for key in ("sqlite", "postgresql"):
        if key in runs:
            lat = runs[key]["latency"]
            console.print(f"{key}: latency phase offered {lat['offered_events_per_s']:,.0f} events/s, "
                          f"{lat['requests']:,} POSTs of {lat['events_per_request']} ({lat['statuses']}); sends at "
                          f"most {lat['behind_schedule_ms']['max']:.1f} ms behind schedule; final statuses "
                          f"{runs[key]['by_status']}; {runs[key]['meta_requests']} Graph requests")
    busy = [f"{key}/{phase}" for key, run in runs.items() for phase, part in run.items()
            if isinstance(part, dict) and part.get("cpu", {}).get("others_share", 0) > 0.10]
    if busy:
        console.print(f"[yellow]other processes used over 10% of the machine during {', '.join(busy)}: those "
                      "figures understate what this machine does alone (CPU µs/event does not depend on it)[/yellow]")
    console.print("end to end = events delivered / (first POST -> the sandbox received every queued event); service "
                  "CPU µs/event = CPU of the metabridge processes (and PostgreSQL backends) in the throughput phase "
                  "per event; accept = POST of 10 events written -> 202 read, open loop; one-event POSTs: 4 "
                  "closed-loop clients. SDK rows: one thread, in memory (nothing durable), events/s = delivered / "
                  "time, POST = one execute() round trip.")


def _goals(runs: dict[str, Any]) -> list[dict[str, Any]]:
    if "sqlite" not in runs:
        return []
    rate = runs["sqlite"]["throughput"]["delivered_events_per_s"]
    lat = runs["sqlite"]["latency"]
    p99 = lat["latency_ms"]["p99"]
    return [
        {"goal": f"SQLite ≥{GOAL_E2E_EVENTS_PER_S:,} events/s end to end", "measured": f"{rate:,.0f}",
         "pass": rate >= GOAL_E2E_EVENTS_PER_S},
        {"goal": f"SQLite p99 accept latency < {GOAL_P99_MS:g} ms at {lat['offered_events_per_s']:,.0f} events/s",
         "measured": f"{p99:.1f} ms", "pass": p99 < GOAL_P99_MS},
    ]


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("metabridge", "facebook-business", "uvicorn", "fastapi", "SQLAlchemy", "psycopg", "httpx"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks delivery", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="events of the throughput phase")
    parser.add_argument("--body-events", type=int, default=1_000, help="events per POST, throughput phase")
    parser.add_argument("--clients", type=int, default=2, help="client threads, throughput phase")
    parser.add_argument("--rate", type=float, default=1_000, help="offered events/s, latency phase")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--request-events", type=int, default=10, help="events per POST, latency phase")
    parser.add_argument("--single-events", type=int, default=2_000, help="single-event POSTs (and SDK per-event)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes, PostgreSQL run")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sdk", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile the service processes (CPU time)")
    parser.add_argument("--wait-quiet", type=float, default=20.0, metavar="S",
                        help="before each run wait up to S seconds for other work on the machine to calm down")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, SQLite file)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="metabridge-bench-delivery-"))
    runs: dict[str, Any] = {}
    try:
        with contextlib.ExitStack() as stack:
            port = _free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("METABRIDGE_")}
            sandbox = Proc("sandbox", _metabridge(False, "sandbox", "--port", str(port)), env, work)
            stack.callback(sandbox.stop)
            sandbox_url = f"http://127.0.0.1:{port}"
            _wait_http(f"{sandbox_url}/_sandbox/health", sandbox)
            for key, run in (("sqlite", lambda: run_sqlite(args, work, sandbox, sandbox_url)),
                             ("postgresql", lambda: run_postgres(args, work, sandbox, sandbox_url)),
                             ("sdk", lambda: run_sdk(args, sandbox, sandbox_url))):
                if getattr(args, f"skip_{key if key != 'postgresql' else 'postgres'}"):
                    continue
                print(f"{key} run ...", file=sys.stderr, flush=True)
                _wait_quiet(args.wait_quiet)
                runs[key] = run()
    except BaseException:
        print(f"benchmark failed; logs in {work}", file=sys.stderr)
        raise
    report = {
        "benchmark": NAME,
        "meta": {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
            "versions": _versions(), "events": args.events, "body_events": args.body_events,
            "clients": args.clients, "latency_rate": args.rate, "latency_seconds": args.latency_seconds,
            "request_events": args.request_events, "workers": args.workers,
            "total_s": round(time.perf_counter() - started, 1),
        },
        "runs": runs,
        "goals": _goals(runs),
    }
    if args.profile:
        report["profiles"] = _profiles(work)
    _print(report)
    if args.profile:
        for name, lines in report["profiles"].items():
            print(f"\n== profile: {name}\n" + "\n".join(lines))
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {RESULTS.relative_to(ROOT)} ({report['meta']['total_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--profiled-cli"]:
        _profiled_cli(sys.argv[2:])
    else:
        raise SystemExit(main())
