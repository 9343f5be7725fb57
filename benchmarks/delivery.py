"""delivery: events posted over HTTP -> delivered in the Graph API sandbox, metabridge vs the official SDK.

Everything runs as real processes talking HTTP over loopback (127.0.0.1 only):

- **SQLite** (the default deployment): one ``metabridge serve`` process — REST API, the in-process delivery
  worker and the Graph API sandbox mounted at ``/graph`` (``METABRIDGE_GRAPH_URL=sandbox``) — on a SQLite
  file in a temporary folder.
- **PostgreSQL** (the production deployment): ``metabridge serve --no-worker`` + two ``metabridge worker``
  processes on a fresh database, delivering to a ``metabridge sandbox`` process.
- **SDK** (``facebook-business``): what an integrator would do without metabridge — build ``UserData`` /
  ``CustomData`` / ``Event`` objects from the same incoming events (:mod:`benchmarks.sdk_baseline`) and
  ``EventRequest(...).execute()`` batches of 1,000, sequentially, against the same ``metabridge sandbox``
  process (the SDK's session ``GRAPH`` base URL points at it). No outbox: nothing is durable, nothing is
  retried, a process crash loses the batch in memory.

Per metabridge deployment, with the service settings left at their defaults (``batch_linger_ms`` 1000 …):

1. **warm-up**: 2,000 other events are posted and delivered (imports, lazily built tables, connections).
2. **throughput**: N synthetic events (default 100,000 from N/5 people, :mod:`benchmarks.synthetic`, the
   same data as events-core) pre-encoded as ``{"events": [...]}`` bodies of 1,000, posted by 2 client
   threads of this process as fast as the API accepts them. *End to end* = from the first POST to the
   moment the sandbox has received every accepted event (its ``/_sandbox/stats`` is polled every 50 ms);
   *ingest* = from the first POST to the last 202.
3. **latency**: a fixed offered rate (default 1,000 events/s for 10 s) as requests of 10 events every
   10 ms, sent on schedule (open loop: 8 sender threads, so a slow answer never delays the next request).
   Reported: each POST's latency (request written -> 202 read) p50/p95/p99/max, and the largest delay of
   a send behind its schedule (shows the offered rate was held). Delivery runs meanwhile.

The event timestamps are anchored to the current hour (Meta's window is 7 days), so the data sets are
cached per hour in ``benchmarks/results/cache``. CPU use of every process is read from ``/proc`` per
phase, with the machine's busy share of all cores.

Run: ``python -m benchmarks delivery [--events N] [--skip-postgres] [--skip-sdk] [--profile]``.
``--profile`` samples the service processes with py-spy (``--py-spy PATH``, else on ``PATH``) during the
throughput phase and prints the hottest functions; the raw stacks go to ``benchmarks/results/``.
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
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks.synthetic import DEFAULT_SEED, generate_events

NAME = "delivery"
ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
RESULTS = RESULTS_DIR / f"{NAME}.json"
CACHE = RESULTS_DIR / "cache"

DEFAULT_EVENTS = 100_000
BODY_EVENTS = 1_000
CLIENTS = 2
WARMUP_EVENTS = 2_000
LATENCY_RATE = 1_000  # events/s
LATENCY_SECONDS = 10.0
LATENCY_REQUEST_EVENTS = 10
LATENCY_SENDERS = 8
WORKERS = 2
POLL_S = 0.05
DELIVERY_TIMEOUT_S = 240.0

#: Issue goals (SQLite deployment).
GOAL_E2E_EVENTS_PER_S = 5_000
GOAL_P99_MS = 50.0

ACCESS_TOKEN = "bench-token"
PIXELS = {"sqlite": "1000000001", "postgresql": "1000000002", "sdk": "1000000003"}
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# ------------------------------------------------------------------------------------------------------
# Data


def _hour_anchor_ms() -> int:
    """Event timestamps end at the start of the current hour: inside Meta's window all hour long."""
    return int(time.time() * 1000) // 3_600_000 * 3_600_000


def _cached_events(label: str, n: int, people: int, seed: int, now_ms: int, first_person_id: int) -> list[dict]:
    source = Path(__file__).with_name("synthetic.py").stat()
    path = CACHE / f"delivery-{label}-{n}-{people}-{seed}-{now_ms}-{int(source.st_mtime)}-{source.st_size}.pickle"
    if path.exists():
        with open(path, "rb") as fh:
            return pickle.load(fh)
    events = generate_events(n, people, seed=seed, now_ms=now_ms, first_person_id=first_person_id)
    CACHE.mkdir(parents=True, exist_ok=True)
    for old in CACHE.glob(f"delivery-{label}-*.pickle"):  # previous hours' copies
        old.unlink(missing_ok=True)
    partial = path.with_suffix(".tmp")
    with open(partial, "wb") as fh:
        pickle.dump(events, fh, protocol=pickle.HIGHEST_PROTOCOL)
    partial.replace(path)
    return events


@dataclass
class Data:
    throughput: list[dict]
    latency: list[dict]
    warmup: list[dict]
    anchor_ms: int
    generate_s: float


def _prepare_data(n_events: int, latency_events: int) -> Data:
    started = time.perf_counter()
    anchor = _hour_anchor_ms()
    return Data(
        throughput=_cached_events("throughput", n_events, max(1, n_events // 5), DEFAULT_SEED, anchor, 0),
        latency=_cached_events("latency", latency_events, max(1, latency_events // 5), DEFAULT_SEED + 2, anchor,
                               20_000_000),
        warmup=_cached_events("warmup", WARMUP_EVENTS, WARMUP_EVENTS, DEFAULT_SEED + 1, anchor, 10_000_000),
        anchor_ms=anchor,
        generate_s=time.perf_counter() - started,
    )


def _bodies(events: Sequence[dict], size: int) -> list[bytes]:
    return [orjson.dumps({"events": list(events[i:i + size])}) for i in range(0, len(events), size)]


# ------------------------------------------------------------------------------------------------------
# Processes and CPU accounting


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _proc_cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all cores."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except OSError:
        return 0, 0
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


def _postgres_cpu_s(database: str) -> dict[int, float]:
    """CPU seconds of the PostgreSQL backends serving ``database``, by pid (read-only look at ``/proc``).

    A backend's process title names its database (``postgres: 15/main: postgres <db> 127.0.0.1(port) ...``);
    the server's shared background processes (WAL writer, checkpointer) are not counted.
    """
    found: dict[int, float] = {}
    needle = f" {database} ".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "cmdline").read_bytes():
                continue
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()
        found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return found


def _wait_quiet(max_wait_s: float, threshold: float = 0.15) -> float:
    """Wait (up to ``max_wait_s``) until other work uses under ``threshold`` of the machine; returns its share."""
    deadline = time.monotonic() + max_wait_s
    announced = False
    while True:
        busy0, total0 = _machine_ticks()
        time.sleep(1.0)
        busy1, total1 = _machine_ticks()
        share = (busy1 - busy0) / max(1, total1 - total0)
        if share < threshold or time.monotonic() >= deadline:
            return share
        if not announced:
            print(f"  the machine is {share:.0%} busy with other work; waiting up to {max_wait_s:.0f} s for it "
                  "to calm down ...", file=sys.stderr, flush=True)
            announced = True


class Proc:
    """A subprocess with its output in a log file; stopped with SIGTERM, then killed."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(args, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def cpu_s(self) -> float:
        return _proc_cpu_s(self.popen.pid)

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        self._log.close()


def _metabridge(*args: str) -> list[str]:
    return [sys.executable, "-m", "metabridge.cli.main", *args]


def _wait_http(url: str, proc: Proc, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{proc.name} did not answer {url} within {timeout:.0f} s:\n{proc.tail()}")


class CpuMeter:
    """CPU seconds of the given processes, this process and PostgreSQL over a block; machine busy share."""

    def __init__(self, procs: Sequence[Proc], database: str | None) -> None:
        self.procs = procs
        self.database = database

    def __enter__(self) -> CpuMeter:
        self._start = {p.name: p.cpu_s() for p in self.procs}
        self._self = time.process_time()
        self._pg = _postgres_cpu_s(self.database) if self.database else {}
        self._ticks = _machine_ticks()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._wall
        busy0, total0 = self._ticks
        busy1, total1 = _machine_ticks()
        self.cpu_s = {p.name: round(p.cpu_s() - self._start[p.name], 2) for p in self.procs}
        self.cpu_s["benchmark client"] = round(time.process_time() - self._self, 2)
        if self.database:
            # backends that started during the block count from zero
            after = _postgres_cpu_s(self.database)
            self.cpu_s["postgres backends"] = round(sum(v - self._pg.get(pid, 0.0) for pid, v in after.items()), 2)
        self.machine_busy = round((busy1 - busy0) / max(1, total1 - total0), 3)
        # Busy CPU seconds of the whole machine minus ours: other work sharing the cores (a shared machine).
        busy_s = (busy1 - busy0) / CLK_TCK
        self.others_s = round(max(0.0, busy_s - sum(self.cpu_s.values())), 2)
        self.wall_s = wall

    def as_dict(self) -> dict[str, Any]:
        cores = os.cpu_count() or 1
        return {"wall_s": round(self.wall_s, 2), "machine_busy_share": self.machine_busy,
                "cpu_cores": cores, "cpu_s": self.cpu_s, "other_processes_cpu_s": self.others_s,
                "other_processes_share": round(self.others_s / max(1e-9, self.wall_s * cores), 3)}


# ------------------------------------------------------------------------------------------------------
# py-spy (optional)


class Sampler:
    """``py-spy record`` attached to processes for a block; raw (collapsed) stacks to files."""

    def __init__(self, py_spy: str | None, procs: Sequence[Proc], label: str, log_dir: Path,
                 idle: bool = False) -> None:
        self.py_spy = py_spy
        self.idle = idle
        self.procs = procs
        self.label = label
        self.log_dir = log_dir
        self.outputs: dict[str, Path] = {}
        self._running: list[subprocess.Popen] = []

    def __enter__(self) -> Sampler:
        if not self.py_spy:
            return self
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        # py-spy costs CPU too: on a 2-core machine keep the total sampling rate near 100 Hz.
        rate = str(max(25, 100 // max(1, len(self.procs))))
        for proc in self.procs:
            out = RESULTS_DIR / f"{NAME}-profile-{self.label}-{proc.name}.txt"
            self.outputs[proc.name] = out
            self._running.append(subprocess.Popen(
                [self.py_spy, "record", "--pid", str(proc.pid), "--format", "raw", "--rate", rate, "--threads",
                 "--nonblocking", *(["--idle"] if self.idle else []), "-o", str(out)],
                stdout=open(self.log_dir / f"py-spy-{proc.name}.log", "wb"), stderr=subprocess.STDOUT,
            ))
        time.sleep(1.0)  # let py-spy attach before the measured work starts
        return self

    def __exit__(self, *exc: object) -> None:
        for sampler in self._running:
            if sampler.poll() is None:
                sampler.send_signal(signal.SIGINT)
        for sampler in self._running:
            try:
                sampler.wait(timeout=30)
            except subprocess.TimeoutExpired:
                sampler.kill()
                sampler.wait()


def _summarize_profile(path: Path, top: int = 18) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy raw output, and per thread."""
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    if not path.exists():
        return {"samples": 0}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames and frames[0].startswith(("thread (", "process ")):
            head = frames.pop(0)
            while frames and frames[0].startswith(("thread (", "process ")):
                head = frames.pop(0)
            threads[head] += count
        total += count
        names = [_short_frame(f) for f in frames]
        if names:
            self_counts[names[-1]] += count
        for name in set(names):
            incl_counts[name] += count
    share = (lambda c: round(100.0 * c / total, 1)) if total else (lambda c: 0.0)
    return {
        "samples": total,
        "self": [(name, share(c)) for name, c in self_counts.most_common(top)],
        "inclusive": [(name, share(c)) for name, c in incl_counts.most_common(top * 3)],
        "threads": [(name, share(c)) for name, c in threads.most_common(8)],
    }


def _short_frame(frame: str) -> str:
    """``func (path/to/module.py:123)`` -> ``func (module.py)``; site-packages paths shortened."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/src/", "lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{name} ({file})"


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
        self.accepted += answer["accepted"]
        self.pending += answer["pending"]
        self.skipped += answer["skipped"]
        self.deduplicated += answer["deduplicated"]
        self.rejected += len(answer["rejected"])


@dataclass
class Service:
    """A running metabridge deployment, seen from the client."""

    api: str  # http://127.0.0.1:port
    sandbox: str  # root of the sandbox the service delivers to
    pixel_id: str
    procs: list[Proc]
    api_key: str
    connection_id: int = 0
    database: str | None = None  # PostgreSQL database name (CPU accounting of its backends)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"}

    @property
    def events_path(self) -> str:
        return f"/v1/connections/{self.connection_id}/events"


def _create_connection(svc: Service) -> None:
    answer = httpx.post(f"{svc.api}/v1/connections", headers=svc.headers(), timeout=30,
                        json={"name": "bench", "pixel_id": svc.pixel_id, "access_token": ACCESS_TOKEN})
    if answer.status_code != 201:
        raise RuntimeError(f"cannot create a connection: {answer.status_code} {answer.text}")
    svc.connection_id = answer.json()["id"]


def _sandbox_received(http: httpx.Client, sandbox: str, pixel_id: str) -> int:
    stats = http.get(f"{sandbox}/_sandbox/stats").json()
    return int(stats.get("pixels", {}).get(pixel_id, {}).get("live", 0))


def _pending(svc: Service) -> int:
    answer = httpx.get(f"{svc.api}/v1/connections/{svc.connection_id}/stats", headers=svc.headers(), timeout=60)
    answer.raise_for_status()
    return int(answer.json()["by_status"].get("pending", 0))


def _wait_delivered(svc: Service, baseline: int, expected: int, timeout: float = DELIVERY_TIMEOUT_S) -> tuple[float, int]:
    """Poll the sandbox until it received ``expected`` more events than ``baseline``.

    Returns (perf_counter time of the first poll that saw them all, events received). When the count
    stops moving for 5 s and metabridge has nothing pending (events Meta rejected), the time of the last
    change is returned.
    """
    deadline = time.perf_counter() + timeout
    last_count, last_change = -1, time.perf_counter()
    with httpx.Client(timeout=30) as http:
        while True:
            received = _sandbox_received(http, svc.sandbox, svc.pixel_id) - baseline
            now = time.perf_counter()
            if received >= expected:
                return now, received
            if received != last_count:
                last_count, last_change = received, now
            elif now - last_change > 5.0 and _pending(svc) == 0:
                return last_change, received
            for proc in svc.procs:
                if not proc.alive():
                    raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")
            if now > deadline:
                raise TimeoutError(f"only {received:,} of {expected:,} events delivered after {timeout:.0f} s")
            time.sleep(POLL_S)


def _post_all(svc: Service, bodies: list[bytes], sizes: list[int], clients: int) -> tuple[Ingested, float, float, list[float]]:
    """Post every body (``clients`` threads, each with its own keep-alive connection) as fast as accepted.

    Returns (ingest counts, first POST time, last 202 time, per-request latencies in s).
    """
    counter = itertools.count()
    lock = threading.Lock()
    totals = Ingested()
    latencies: list[float] = []
    errors: list[BaseException] = []
    marks: list[float] = []

    def client() -> None:
        try:
            with httpx.Client(base_url=svc.api, headers=svc.headers(), timeout=300) as http:
                while not errors:
                    index = next(counter)
                    if index >= len(bodies):
                        return
                    started = time.perf_counter()
                    answer = http.post(svc.events_path, content=bodies[index])
                    done = time.perf_counter()
                    if answer.status_code != 202:
                        raise RuntimeError(f"POST {svc.events_path}: {answer.status_code} {answer.text[:500]}")
                    data = answer.json()
                    with lock:
                        totals.add(data, sizes[index])
                        latencies.append(done - started)
                        marks.extend((started, done))
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=client, name=f"bench-client-{i}") for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return totals, min(marks), max(marks), latencies


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def _offered_load(svc: Service, events: list[dict], rate: float, per_request: int, senders: int) -> dict[str, Any]:
    """Open-loop: request ``i`` is due at ``t0 + i * per_request / rate``; free senders take it on time."""
    bodies = _bodies(events, per_request)
    sizes = [min(per_request, len(events) - i) for i in range(0, len(events), per_request)]
    interval = per_request / rate
    work: queue.SimpleQueue = queue.SimpleQueue()
    lock = threading.Lock()
    samples: list[tuple[float, float, float]] = []  # (scheduled, written, answered)
    totals = Ingested()
    errors: list[BaseException] = []
    statuses: Counter[int] = Counter()

    def sender() -> None:
        try:
            with httpx.Client(base_url=svc.api, headers=svc.headers(), timeout=60) as http:
                http.get("/health")  # open the keep-alive connection before the clock starts
                while True:
                    item = work.get()
                    if item is None:
                        return
                    index, due = item
                    started = time.perf_counter()
                    answer = http.post(svc.events_path, content=bodies[index])
                    done = time.perf_counter()
                    with lock:
                        statuses[answer.status_code] += 1
                        samples.append((due, started, done))
                        if answer.status_code == 202:
                            totals.add(answer.json(), sizes[index])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=sender, name=f"bench-sender-{i}") for i in range(senders)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    t0 = time.perf_counter() + 0.05
    for index in range(len(bodies)):
        due = t0 + index * interval
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        work.put((index, due))
        if errors:
            break
    for _ in threads:
        work.put(None)
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    latency_ms = [(done - written) * 1000 for _, written, done in samples]
    open_loop_ms = [(done - due) * 1000 for due, _, done in samples]
    behind_ms = [(written - due) * 1000 for due, written, _ in samples]
    span = max(d for d, _, _ in samples) - min(d for d, _, _ in samples) + interval
    last_answer = max(done for _, _, done in samples)
    return {
        "requests": len(samples),
        "events_per_request": per_request,
        "offered_events_per_s": round(totals.posted / span, 1),
        "duration_s": round(span, 2),
        "statuses": {str(k): v for k, v in statuses.items()},
        "ingested": totals.__dict__,
        "latency_ms": {q: round(_percentile(latency_ms, p), 2) for q, p in
                       (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))} | {
            "mean": round(statistics.fmean(latency_ms), 2)},
        "open_loop_latency_ms": {q: round(_percentile(open_loop_ms, p), 2) for q, p in
                                 (("p50", 50), ("p99", 99), ("max", 100))},
        "send_behind_schedule_ms": {"p99": round(_percentile(behind_ms, 99), 2),
                                    "max": round(max(behind_ms), 2)},
        "_last_answer": last_answer,
    }


# ------------------------------------------------------------------------------------------------------
# One metabridge deployment


def _base_env(data_dir: Path, api_key: str, secret_key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METABRIDGE_")}
    env.update({
        "METABRIDGE_DATA_DIR": str(data_dir),
        "METABRIDGE_API_KEY": api_key,
        "METABRIDGE_SECRET_KEY": secret_key,
        "METABRIDGE_HOST": "127.0.0.1",
        "METABRIDGE_LOG_LEVEL": "warning",
    })
    return env


def _measure(svc: Service, data: Data, args: argparse.Namespace, label: str, log_dir: Path,
             py_spy: str | None) -> dict[str, Any]:
    """Warm-up, throughput and latency phases against one running deployment."""
    _create_connection(svc)
    with httpx.Client(timeout=30) as http:
        base = _sandbox_received(http, svc.sandbox, svc.pixel_id)

    # warm-up
    warm, _, _, _ = _post_all(svc, _bodies(data.warmup, BODY_EVENTS), _sizes(data.warmup, BODY_EVENTS), 1)
    _wait_delivered(svc, base, warm.pending)
    base += warm.pending

    # throughput
    bodies = _bodies(data.throughput, args.body_events)
    sizes = _sizes(data.throughput, args.body_events)
    with Sampler(py_spy, svc.procs, label, log_dir, args.profile_idle) as sampler, CpuMeter(svc.procs, svc.database) as cpu:
        ingested, first, last_accept, post_latencies = _post_all(svc, bodies, sizes, args.clients)
        delivered_at, delivered = _wait_delivered(svc, base, ingested.pending)
    base += delivered
    e2e_s = delivered_at - first
    ingest_s = last_accept - first
    throughput = {
        "events": ingested.posted,
        "body_events": args.body_events,
        "clients": args.clients,
        "ingested": ingested.__dict__,
        "delivered": delivered,
        "ingest_s": round(ingest_s, 3),
        "ingest_events_per_s": round(ingested.posted / ingest_s, 1),
        "e2e_s": round(e2e_s, 3),
        "e2e_events_per_s": round(ingested.posted / e2e_s, 1),
        "delivered_events_per_s": round(delivered / e2e_s, 1),
        "drain_after_last_accept_s": round(delivered_at - last_accept, 3),
        "post_latency_ms": {"p50": round(_percentile(post_latencies, 50) * 1000, 1),
                            "max": round(max(post_latencies) * 1000, 1)},
        "cpu": cpu.as_dict(),
    }
    profiles = {name: _summarize_profile(path) for name, path in sampler.outputs.items()}

    # latency at a fixed offered rate
    latency_events = data.latency[: int(args.rate * args.latency_seconds)]
    with CpuMeter(svc.procs, svc.database) as cpu:
        latency = _offered_load(svc, latency_events, args.rate, args.request_events, LATENCY_SENDERS)
        delivered_at, delivered = _wait_delivered(svc, base, latency["ingested"]["pending"])
    latency["delivered"] = delivered
    latency["drain_after_last_answer_s"] = round(delivered_at - latency.pop("_last_answer"), 3)
    latency["cpu"] = cpu.as_dict()

    final = httpx.get(f"{svc.api}/v1/connections/{svc.connection_id}/stats", headers=svc.headers(), timeout=60).json()
    return {"throughput": throughput, "latency": latency, "by_status": final["by_status"],
            "meta_requests": final["requests"], "profiles": profiles}


def _sizes(events: Sequence[dict], size: int) -> list[int]:
    return [min(size, len(events) - i) for i in range(0, len(events), size)]


def run_sqlite(data: Data, args: argparse.Namespace, work: Path, py_spy: str | None) -> dict[str, Any]:
    from cryptography.fernet import Fernet

    api_key = f"mb_bench_{secrets.token_hex(8)}"
    port = _free_port()
    env = _base_env(work / "sqlite-data", api_key, Fernet.generate_key().decode())
    env.update({"METABRIDGE_PORT": str(port), "METABRIDGE_GRAPH_URL": "sandbox"})
    with contextlib.ExitStack() as stack:
        serve = Proc("serve", _metabridge("serve"), env, work)
        stack.callback(serve.stop)
        api = f"http://127.0.0.1:{port}"
        _wait_http(f"{api}/health", serve)
        svc = Service(api=api, sandbox=f"{api}/graph", pixel_id=PIXELS["sqlite"], procs=[serve], api_key=api_key)
        result = _measure(svc, data, args, "sqlite", work, py_spy)
    result["setup"] = "metabridge serve: API + delivery worker thread + sandbox mounted in-process, SQLite (WAL)"
    return result


def _load_postgres_helpers() -> Any:
    spec = importlib.util.spec_from_file_location("_metabridge_bench_postgres", ROOT / "tests" / "_postgres.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def run_postgres(data: Data, args: argparse.Namespace, work: Path, sandbox_url: str, sandbox: Proc,
                 py_spy: str | None) -> dict[str, Any]:
    from cryptography.fernet import Fernet

    pg = _load_postgres_helpers()
    api_key = f"mb_bench_{secrets.token_hex(8)}"
    port = _free_port()
    with pg.postgres_server() as server_url, pg.fresh_database(server_url) as database_url, \
            contextlib.ExitStack() as stack:
        env = _base_env(work / "pg-data", api_key, Fernet.generate_key().decode())
        env.update({"METABRIDGE_PORT": str(port), "METABRIDGE_GRAPH_URL": sandbox_url,
                    "METABRIDGE_DATABASE_URL": database_url})
        serve = Proc("serve-no-worker", _metabridge("serve", "--no-worker"), env, work)
        stack.callback(serve.stop)
        api = f"http://127.0.0.1:{port}"
        _wait_http(f"{api}/health", serve)  # schema migrated before the workers start
        workers = []
        for i in range(args.workers):
            worker = Proc(f"worker-{i + 1}", _metabridge("worker"), env, work)
            stack.callback(worker.stop)
            workers.append(worker)
        time.sleep(1.0)
        for worker in workers:
            if not worker.alive():
                raise RuntimeError(f"{worker.name} exited:\n{worker.tail()}")
        svc = Service(api=api, sandbox=sandbox_url, pixel_id=PIXELS["postgresql"],
                      procs=[serve, *workers, sandbox], api_key=api_key,
                      database=database_url.rsplit("/", 1)[1])
        result = _measure(svc, data, args, "postgresql", work, py_spy)
    result["setup"] = (f"metabridge serve --no-worker + {args.workers} metabridge worker processes, PostgreSQL, "
                       "metabridge sandbox process")
    return result


# ------------------------------------------------------------------------------------------------------
# The SDK


def run_sdk(events: list[dict], warmup: list[dict], sandbox_url: str, sandbox: Proc) -> dict[str, Any]:
    """The integrator's loop with ``facebook-business``: build, ``execute()`` per 1,000, sequentially."""
    from facebook_business.adobjects.serverside.event_request import EventRequest
    from facebook_business.api import FacebookAdsApi
    from facebook_business.exceptions import FacebookRequestError
    from facebook_business.session import FacebookSession

    from benchmarks.sdk_baseline import MAX_EVENTS_PER_REQUEST, PARTNER_AGENT, SdkBaseline

    pixel_id = PIXELS["sdk"]
    session = FacebookSession(access_token=ACCESS_TOKEN)
    session.GRAPH = sandbox_url  # this session only; the SDK's class constant stays graph.facebook.com
    previous = FacebookAdsApi.get_default_api()
    FacebookAdsApi.set_default_api(FacebookAdsApi(session))
    baseline = SdkBaseline(pixel_id)
    counts: Counter[str] = Counter()

    def send(batch: list[Any]) -> None:
        try:
            answer = EventRequest(pixel_id=pixel_id, events=batch, partner_agent=PARTNER_AGENT).execute()
        except FacebookRequestError as exc:  # the sandbox (Meta) refused the whole request
            counts["events_in_refused_requests"] += len(batch)
            counts[f"refused:{exc.api_error_code()}"] += 1
            return
        except (TypeError, ValueError):  # normalize() refused an event before sending: drop it, send the rest
            good = []
            for event in batch:
                try:
                    event.normalize()
                except (TypeError, ValueError):
                    counts["dropped_by_normalize"] += 1
                else:
                    good.append(event)
            if good:
                send(good)
            return
        counts["requests"] += 1
        counts["events_received"] += answer.events_received

    try:
        with httpx.Client(timeout=30) as http:
            base = _sandbox_received(http, sandbox_url, pixel_id)
            # warm-up: other events, as for metabridge (imports, the connection)
            warm = [e for e in (baseline.event(r) for r in warmup) if e is not None]
            for i in range(0, len(warm), MAX_EVENTS_PER_REQUEST):
                send(warm[i:i + MAX_EVENTS_PER_REQUEST])
            counts.clear()
            baseline = SdkBaseline(pixel_id)
            base = _sandbox_received(http, sandbox_url, pixel_id)
            with CpuMeter([sandbox], None) as cpu:
                started = time.perf_counter()
                batch: list[Any] = []
                for raw in events:
                    event = baseline.event(raw)
                    if event is None:
                        continue
                    batch.append(event)
                    if len(batch) == MAX_EVENTS_PER_REQUEST:
                        send(batch)
                        batch = []
                if batch:
                    send(batch)
                seconds = time.perf_counter() - started
            delivered = _sandbox_received(http, sandbox_url, pixel_id) - base
    finally:
        FacebookAdsApi.set_default_api(previous)
    return {
        "setup": "facebook-business EventRequest.execute(), batches of 1,000, sequential, metabridge sandbox "
                 "process; no outbox (not durable, no retry)",
        "events": len(events),
        "delivered": delivered,
        "events_received_answers": counts["events_received"],
        "requests": counts["requests"],
        "refused": {k: v for k, v in counts.items() if k not in ("requests", "events_received")},
        "rejected_by_integrator_code": dict(baseline.rejected_events),
        "values_left_out": dict(baseline.dropped_values),
        "e2e_s": round(seconds, 3),
        "e2e_events_per_s": round(len(events) / seconds, 1),
        "delivered_events_per_s": round(delivered / seconds, 1),
        "cpu": cpu.as_dict(),
    }


# ------------------------------------------------------------------------------------------------------
# Output


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("metabridge", "facebook-business", "uvicorn", "fastapi", "SQLAlchemy", "psycopg", "orjson",
                 "httpx", "requests"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "?"
    for extra in ("uvloop", "httptools"):
        out[extra] = "installed" if importlib.util.find_spec(extra) else "not installed"
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _fmt(value: Any, spec: str = ",.0f") -> str:
    return "—" if value is None else format(value, spec)


def _print(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 150))
    runs = report["runs"]
    sdk = runs.get("sdk")
    sdk_rate = sdk["e2e_events_per_s"] if sdk else None
    meta = report["meta"]
    table = Table(title=f"delivery: HTTP ingest -> delivered in the Graph API sandbox "
                        f"({meta['events']:,} events; {meta['cpu_cores']} cores; loopback)")
    for column in ("run", "events", "delivered", "end-to-end s", "e2e events/s", "vs SDK", "ingest events/s",
                   "accept p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column == "run" else "right")
    labels = {"sqlite": "metabridge · SQLite (serve: API+worker+sandbox)",
              "postgresql": f"metabridge · PostgreSQL (API + {meta['workers']} workers)",
              "sdk": "facebook-business SDK (sequential, not durable)"}
    for key in ("sqlite", "postgresql", "sdk"):
        run = runs.get(key)
        if run is None:
            continue
        if key == "sdk":
            table.add_row(labels[key], f"{run['events']:,}", f"{run['delivered']:,}", f"{run['e2e_s']:.2f}",
                          f"{run['e2e_events_per_s']:,.0f}", "1.00x", "—", "—", "—", "—", "—")
            continue
        tp, lat = run["throughput"], run["latency"]["latency_ms"]
        ratio = f"{tp['e2e_events_per_s'] / sdk_rate:.2f}x" if sdk_rate else "—"
        table.add_row(labels[key], f"{tp['events']:,}", f"{tp['delivered']:,}", f"{tp['e2e_s']:.2f}",
                      f"{tp['e2e_events_per_s']:,.0f}", ratio, f"{tp['ingest_events_per_s']:,.0f}",
                      f"{lat['p50']:.1f}", f"{lat['p95']:.1f}", f"{lat['p99']:.1f}", f"{lat['max']:.1f}")
    console.print(table)

    goals = Table(title="goals (issue), SQLite deployment")
    for column in ("goal", "measured", "result"):
        goals.add_column(column, justify="left" if column == "goal" else "right")
    for goal in report["goals"]:
        goals.add_row(goal["goal"], goal["measured"],
                      "[green]PASS[/green]" if goal["pass"] else "[red]MISS[/red]")
    console.print(goals)

    cpu = Table(title="CPU seconds per process during each measured phase (machine busy = share of all cores)")
    for column in ("run / phase", "wall s", "machine busy", "CPU s by process"):
        cpu.add_column(column, justify="left" if column in ("run / phase", "CPU s by process") else "right")
    for key in ("sqlite", "postgresql", "sdk"):
        run = runs.get(key)
        if run is None:
            continue
        phases = [("end to end", run["cpu"])] if key == "sdk" else [
            ("throughput", run["throughput"]["cpu"]), ("latency", run["latency"]["cpu"])]
        for phase, data in phases:
            by_proc = ", ".join(f"{name} {secs:.1f}" for name, secs in data["cpu_s"].items())
            by_proc += f"; [dim]other processes {data['other_processes_cpu_s']:.1f}[/dim]"
            cpu.add_row(f"{key} / {phase}", f"{data['wall_s']:.1f}", f"{data['machine_busy_share']:.0%}", by_proc)
    console.print(cpu)

    for key in ("sqlite", "postgresql"):
        run = runs.get(key)
        if run is None:
            continue
        lat = run["latency"]
        console.print(
            f"{key}: latency phase offered {lat['offered_events_per_s']:,.0f} events/s for {lat['duration_s']:.1f} s "
            f"as {lat['requests']:,} POSTs of {lat['events_per_request']} events (statuses {lat['statuses']}); "
            f"sends at most {lat['send_behind_schedule_ms']['max']:.1f} ms behind schedule; open-loop p99 "
            f"{lat['open_loop_latency_ms']['p99']:.1f} ms; all delivered {lat['drain_after_last_answer_s']:.2f} s "
            f"after the last answer. Throughput: ingest answered in {run['throughput']['ingest_s']:.2f} s, the "
            f"last event delivered {run['throughput']['drain_after_last_accept_s']:.2f} s later; final statuses "
            f"{run['by_status']}."
        )
    if sdk:
        console.print(
            f"sdk: {sdk['requests']} requests; the SDK path keeps nothing on disk — an event in a failed request "
            f"or in a crashed process is lost; metabridge answers 202 only after the events are committed. "
            f"refused: {sdk['refused'] or 'none'}."
        )
    shares = [(f"{key}/{phase}", cpu["other_processes_share"]) for key, run in runs.items()
              for phase, cpu in ([("end to end", run["cpu"])] if key == "sdk" else
                                 [("throughput", run["throughput"]["cpu"]), ("latency", run["latency"]["cpu"])])]
    busy = [(name, share) for name, share in shares if share > 0.10]
    if busy:
        console.print(
            "[yellow]warning: other processes used part of the machine during "
            + ", ".join(f"{name} ({share:.0%} of all cores)" for name, share in busy)
            + "; those figures understate what this machine can do alone.[/yellow]"
        )
    console.print(
        "events/s = events posted / seconds from the first POST (SDK: first event built) until the sandbox has "
        "received every accepted event. ingest = until the last 202. accept latency = one POST of "
        f"{meta['latency_request_events']} events at a fixed offered {meta['latency_rate']:,} events/s, request "
        "written -> 202 read, measured by the client."
    )


def _goals(runs: dict[str, Any]) -> list[dict[str, Any]]:
    goals = []
    sqlite = runs.get("sqlite")
    if sqlite:
        rate = sqlite["throughput"]["e2e_events_per_s"]
        goals.append({"goal": f"≥{GOAL_E2E_EVENTS_PER_S:,} events/s end to end", "measured": f"{rate:,.0f}",
                      "pass": rate >= GOAL_E2E_EVENTS_PER_S})
        p99 = sqlite["latency"]["latency_ms"]["p99"]
        offered = sqlite["latency"]["offered_events_per_s"]
        goals.append({"goal": f"p99 accept latency < {GOAL_P99_MS:g} ms at {offered:,.0f} events/s",
                      "measured": f"{p99:.1f} ms", "pass": p99 < GOAL_P99_MS})
    return goals


# ------------------------------------------------------------------------------------------------------
# Driver


def _find_py_spy(explicit: str | None) -> str | None:
    candidate = explicit or shutil.which("py-spy")
    if candidate and Path(candidate).exists():
        return candidate
    raise SystemExit("--profile needs py-spy: pip install py-spy (any venv) and pass --py-spy PATH")


def _print_profiles(report: dict[str, Any]) -> None:
    from rich.console import Console

    console = Console(width=max(Console().width, 150))
    for key, run in report["runs"].items():
        for proc, prof in (run.get("profiles") or {}).items():
            if not prof.get("samples"):
                continue
            console.print(f"\n[bold]{key} / {proc}[/bold]: {prof['samples']:,} py-spy samples (active threads)")
            console.print("  threads: " + ", ".join(f"{n} {s}%" for n, s in prof["threads"]))
            console.print("  self:    " + "; ".join(f"{n} {s}%" for n, s in prof["self"][:14]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks delivery", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="events of the throughput phase")
    parser.add_argument("--clients", type=int, default=CLIENTS, help="client threads posting in the throughput phase")
    parser.add_argument("--body-events", type=int, default=BODY_EVENTS, help="events per POST, throughput phase")
    parser.add_argument("--rate", type=float, default=LATENCY_RATE, help="offered events/s, latency phase")
    parser.add_argument("--latency-seconds", type=float, default=LATENCY_SECONDS)
    parser.add_argument("--request-events", type=int, default=LATENCY_REQUEST_EVENTS,
                        help="events per POST, latency phase")
    parser.add_argument("--workers", type=int, default=WORKERS, help="worker processes, PostgreSQL run")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sdk", action="store_true")
    parser.add_argument("--profile", action="store_true", help="sample the service processes with py-spy")
    parser.add_argument("--py-spy", default=None, help="path of the py-spy executable")
    parser.add_argument("--profile-idle", action="store_true",
                        help="with --profile: sample waiting threads too (wall time instead of CPU time)")
    parser.add_argument("--wait-quiet", type=float, default=30.0, metavar="S",
                        help="before each run, wait up to S seconds for other work on the machine to stop")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, SQLite file)")
    args = parser.parse_args(argv)
    py_spy = _find_py_spy(args.py_spy) if args.profile else None

    started = time.perf_counter()
    latency_events = int(args.rate * args.latency_seconds)
    data = _prepare_data(args.events, latency_events)
    work = Path(tempfile.mkdtemp(prefix="metabridge-bench-delivery-"))
    runs: dict[str, Any] = {}
    try:
        if not args.skip_sqlite:
            print("sqlite run ...", file=sys.stderr, flush=True)
            _wait_quiet(args.wait_quiet)
            runs["sqlite"] = run_sqlite(data, args, work, py_spy)
        if not (args.skip_postgres and args.skip_sdk):
            with contextlib.ExitStack() as stack:
                sandbox_port = _free_port()
                env = {k: v for k, v in os.environ.items() if not k.startswith("METABRIDGE_")}
                sandbox = Proc("sandbox", _metabridge("sandbox", "--host", "127.0.0.1", "--port", str(sandbox_port)),
                               env, work)
                stack.callback(sandbox.stop)
                sandbox_url = f"http://127.0.0.1:{sandbox_port}"
                _wait_http(f"{sandbox_url}/_sandbox/health", sandbox)
                if not args.skip_postgres:
                    print("postgresql run ...", file=sys.stderr, flush=True)
                    _wait_quiet(args.wait_quiet)
                    runs["postgresql"] = run_postgres(data, args, work, sandbox_url, sandbox, py_spy)
                if not args.skip_sdk:
                    print("sdk run ...", file=sys.stderr, flush=True)
                    _wait_quiet(args.wait_quiet)
                    runs["sdk"] = run_sdk(data.throughput, data.warmup, sandbox_url, sandbox)
    except BaseException:
        print(f"benchmark failed; logs in {work}", file=sys.stderr)
        args.keep = True
        raise
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    sdk_rate = runs["sdk"]["e2e_events_per_s"] if "sdk" in runs else None
    ratios = {key: round(run["throughput"]["e2e_events_per_s"] / sdk_rate, 3)
              for key, run in runs.items() if key != "sdk" and sdk_rate}
    report = {
        "benchmark": NAME,
        "meta": {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.system()} {platform.machine()}, {_cpu_model()}",
            "cpu_cores": os.cpu_count(),
            "versions": _versions(),
            "events": args.events,
            "body_events": args.body_events,
            "clients": args.clients,
            "latency_rate": args.rate,
            "latency_seconds": args.latency_seconds,
            "latency_request_events": args.request_events,
            "workers": args.workers,
            "service_settings": "defaults (batch_linger_ms 1000, lease_seconds 120), log level warning",
            "dataset": f"benchmarks.synthetic, seed {DEFAULT_SEED}, {args.events:,} events from "
                       f"{max(1, args.events // 5):,} people, timestamps up to {data.anchor_ms}",
            "generate_or_load_s": round(data.generate_s, 2),
            "total_s": round(time.perf_counter() - started, 1),
        },
        "runs": runs,
        "ratios_vs_sdk": ratios,
        "goals": _goals(runs),
    }
    _print(report)
    if args.profile:
        _print_profiles(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten {RESULTS.relative_to(ROOT)} (total {report['meta']['total_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
