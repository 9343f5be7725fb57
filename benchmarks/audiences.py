"""audiences: a 1,000,000-member audience synced to the Graph API sandbox, then re-synced after 1% churn.

Everything runs as real processes talking HTTP over loopback (127.0.0.1 only), on SQLite by default
(``--postgres`` adds the same runs on a fresh PostgreSQL database at 127.0.0.1:5432):

- a ``metabridge sandbox`` process (the Meta side: its CPU is not in the measured worker process);
- a ``metabridge serve --no-worker`` process (the REST API) that loads the members and links the
  destination, with ``audience_debounce_seconds`` 0 (a change is due at once) and ``max_body_bytes``
  64 MB (a call of 100,000 members is ~22 MB of JSON; the default limit is 20 MB);
- per sync, a **fresh worker process** (``python -m benchmarks.audiences --worker-child``) running
  :class:`~metabridge.delivery.audiences.AudienceWorker` alone — what the audience thread of
  ``metabridge worker`` runs, without the events worker beside it — so its peak memory is the sync's own.
  Its ``GraphClient`` counts the request bodies it sends (the sandbox's request log has row counts, not
  sizes); the sandbox's log and member counts check the Meta side.

Data (:mod:`benchmarks.synthetic`'s people, fixed seed, cached in ``benchmarks/results/cache``): members
keep the member fields of ``make_person`` (email with capitals and spaces, phones in national and
international spellings from seven countries, names, birth date, gender, city/state/zip, country, an
external id for 70%). Broken values the API would reject are left out, a member with no email, phone or
external id gets an external id, and the last 7 digits of each phone are the person's number, so every
member is accepted and no two people share a phone (Meta's matching would merge them otherwise; the
Meta-side counts are then exact).

Phases, per database:

1. **member load**: ``POST /v1/audiences/{id}/members`` in calls of 100,000 (one client thread). Reported,
   but not part of the sync figure.
2. **first sync**: ``POST /v1/audiences/{id}/destinations`` (keys ``["external_id", "email", "phone"]``,
   mode ``mirror``: rows with and without EXTERN_ID go under two schemas), then the worker process runs
   until its jobs are done. *rows/s* = rows sent / (last job finished − first job created), the jobs'
   own timestamps. Peak memory = the worker process's peak RSS (Linux ``VmHWM``, reset after start-up)
   above its RSS after start-up (imports, engine, Graph client). The same is done for an audience of N/10
   members: bounded memory shows as the same growth at both sizes.
3. **re-sync after 1% churn**: N/200 members removed (``DELETE .../members``), N/200 new members added,
   N/200 existing members posted again with their emails re-spelled (upper case, spaces: the same person,
   the same normalized row), no member changed. The re-sync must send exactly N/200 removes + N/200 adds.
4. **row formatting vs the SDK** (this process, CPU time, best of 2 interleaved passes, 100,000 members):
   metabridge ``normalize_member`` + ``build_row`` + ``users_body`` per 10,000 rows, vs the
   ``facebook-business`` SDK's ``CustomAudience.format_params(schema, users, is_raw=True)`` on the same
   raw members (values picked in schema order, ``""`` when missing, as an integrator would).

``--profile`` runs one more first sync (the N/10 audience, a second destination) under cProfile in its
worker process and prints the hot spots (not used for the figures).

Run: ``python -m benchmarks audiences [--members N | --quick] [--postgres] [--profile]``.
Results: ``benchmarks/results/audiences.json``.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import resource
import secrets
import shutil
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks.delivery import CpuMeter, Proc, _base_env, _cpu_model, _free_port, _load_postgres_helpers, _metabridge, \
    _wait_http, _wait_quiet
from benchmarks.events_core import PeakMemory, _loaded_source_digest, _proc_status_mb
from benchmarks.synthetic import DEFAULT_SEED

NAME = "audiences"
ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
RESULTS = RESULTS_DIR / f"{NAME}.json"
CACHE = RESULTS_DIR / "cache"

DEFAULT_MEMBERS = 1_000_000
QUICK_MEMBERS = 100_000
CALL_MEMBERS = 100_000  # members per POST (the API's maximum)
FORMAT_MEMBERS = 100_000
KEYS = ["external_id", "email", "phone"]
MODE = "mirror"
CHURN_DIVISOR = 200  # N/200 removed + N/200 added = 1% of the audience
NEW_PIDS = 10_000_000  # person numbers of the members added by the churn start here (+ N)
PROFILE_MEMBERS = 100_000
SYNC_TIMEOUT_S = 900.0
MAX_BODY_BYTES = 64_000_000

#: Issue goals.
GOAL_ROWS_PER_S = 50_000
#: "Bounded by the batch size": the worker's peak RSS growth at N may exceed the one at N/10 by at most
#: this factor plus this many MB (memory proportional to the audience would be ~10x).
MEMORY_FACTOR, MEMORY_SLACK_MB = 1.5, 16.0


# ------------------------------------------------------------------------------------------------------
# Data


_BAD_GENDERS = frozenset({"other", "U", "prefer not to say"})
_BAD_COUNTRIES = frozenset({"N/A", "-", "Unknown"})
_MEMBER_FIELDS = ("external_id", "email", "phone", "first_name", "last_name", "birthdate", "gender", "city",
                  "state", "zip", "country", "madid")


def _unique_phone(phone: str, pid: int) -> str:
    """The same spelling with the last 7 digits replaced by the person's number (no two people share one)."""
    positions = [i for i, ch in enumerate(phone) if ch.isdigit()]
    if len(positions) < 8:
        return phone
    chars = list(phone)
    for pos, digit in zip(positions[-7:], f"{pid % 10_000_000:07d}"):
        chars[pos] = digit
    return "".join(chars)


def make_member(rng: Any, pid: int) -> dict[str, Any]:
    """One audience member as a CRM would export it (see the module docstring)."""
    from benchmarks.synthetic import _BROKEN_EMAILS, make_person

    person = make_person(rng, pid)
    member = {k: person[k] for k in _MEMBER_FIELDS if k in person}
    if member.get("email") in _BROKEN_EMAILS:
        del member["email"]
    if member.get("country") in _BAD_COUNTRIES:
        del member["country"]
    if member.get("gender") in _BAD_GENDERS:
        del member["gender"]
    if "phone" in member:
        member["phone"] = _unique_phone(member["phone"], pid)
    if not any(k in member for k in ("external_id", "email", "phone")):
        member["external_id"] = f"cust_{pid:07d}"
    return member


def _chunk_key(seed: int, first_pid: int, count: int) -> str:
    """Cached members depend on the generator's source (synthetic.py and the two functions above)."""
    import inspect

    source = Path(__file__).with_name("synthetic.py").read_bytes()
    source += "".join(inspect.getsource(f) for f in (_unique_phone, make_member)).encode()
    return hashlib.sha256(source + repr((seed, first_pid, count)).encode()).hexdigest()[:12]


def _chunk_path(seed: int, first_pid: int, count: int) -> Path:
    return CACHE / f"audience-{seed}-{first_pid}-{count}-{_chunk_key(seed, first_pid, count)}.json"


def _generate_chunk(seed: int, first_pid: int, count: int) -> str:
    """Members ``first_pid .. first_pid + count - 1`` as ``{"members": [...]}`` JSON, written to the cache."""
    import random

    rng = random.Random(seed * 1_000_003 + first_pid)
    members = [make_member(rng, pid) for pid in range(first_pid, first_pid + count)]
    path = _chunk_path(seed, first_pid, count)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(orjson.dumps({"members": members}))
    partial.replace(path)
    return str(path)


def _ranges(first_pid: int, count: int) -> list[tuple[int, int]]:
    return [(start, min(CALL_MEMBERS, first_pid + count - start))
            for start in range(first_pid, first_pid + count, CALL_MEMBERS)]


def main_ranges(members: int) -> list[tuple[int, int]]:
    """The chunks of the main audience: its first N/10 members (synced alone first), then the rest."""
    small = max(1, members // 10)
    return _ranges(0, small) + (_ranges(small, members - small) if members > small else [])


def prefix_ranges(ranges: list[tuple[int, int]], limit: int) -> list[tuple[int, int]]:
    """The leading whole chunks holding at most ``limit`` members (at least one chunk)."""
    out: list[tuple[int, int]] = []
    total = 0
    for first, count in ranges:
        if out and total + count > limit:
            break
        out.append((first, count))
        total += count
    return out


def prepare_chunks(seed: int, wanted: list[tuple[int, int]], regenerate: bool) -> float:
    """Generate the missing chunks (2 processes); returns the seconds spent (0 when all were cached)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    for first, count in wanted:  # copies made by an older generator source
        current = _chunk_path(seed, first, count)
        for stale in CACHE.glob(f"audience-{seed}-{first}-{count}-*.json"):
            if stale != current:
                stale.unlink(missing_ok=True)
    missing = [(a, b) for a, b in wanted if regenerate or not _chunk_path(seed, a, b).exists()]
    if not missing:
        return 0.0
    started = time.perf_counter()
    print(f"generating {sum(b for _, b in missing):,} members (cached afterwards) ...", file=sys.stderr, flush=True)
    with ProcessPoolExecutor(max_workers=min(2, len(missing))) as pool:
        list(pool.map(_generate_chunk, [seed] * len(missing), [a for a, _ in missing], [b for _, b in missing]))
    return time.perf_counter() - started


def chunk_bytes(seed: int, first_pid: int, count: int) -> bytes:
    return _chunk_path(seed, first_pid, count).read_bytes()


def chunk_members(seed: int, first_pid: int, count: int) -> list[dict[str, Any]]:
    return orjson.loads(chunk_bytes(seed, first_pid, count))["members"]


# ------------------------------------------------------------------------------------------------------
# The worker process (one per measured sync)


def _count_requests_graph(base: type) -> type:
    class CountingGraphClient(base):  # type: ignore[misc, valid-type]
        """GraphClient that adds up what it sends: requests, body bytes, time waiting for answers."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.requests: Counter[str] = Counter()
            self.body_bytes: Counter[str] = Counter()
            self.wait_s = 0.0

        def _send(self, prepared: Any, *, secrets: Any) -> Any:
            self.requests[prepared.method] += 1
            self.body_bytes[prepared.method] += len(prepared.content or b"")
            started = time.perf_counter()
            try:
                return super()._send(prepared, secrets=secrets)
            finally:
                self.wait_s += time.perf_counter() - started

    return CountingGraphClient


def worker_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the audience worker until the destination's sync is done; report jobs, bytes, memory, CPU."""
    from sqlalchemy import func, select

    from metabridge.config import load_settings
    from metabridge.delivery.audiences import AudienceWorker
    from metabridge.graph import GraphClient
    from metabridge.service import Service
    from metabridge.store import audience_jobs as jobs
    from metabridge.store.audiences import get_destination
    from metabridge.store.schema import audience_jobs

    settings = load_settings()
    service = Service.open(settings, migrate_schema=False)
    graph = _count_requests_graph(GraphClient)(
        base_url=settings.graph_url, version=settings.graph_version, timeout=settings.graph_timeout_seconds)
    worker = AudienceWorker(service.engine, settings, service.box, graph, worker_id=f"bench-{os.getpid()}")
    destination_id = int(spec["destination_id"])
    with service.engine.connect() as conn:  # also opens the pooled connection before the clock starts
        first_job = int(conn.execute(select(func.coalesce(func.max(audience_jobs.c.id), 0))).scalar_one()) + 1
    gc.collect()

    def settled() -> bool:
        with service.engine.connect() as conn:
            dest = get_destination(conn, destination_id)
            busy = jobs.has_unfinished(conn, destination_id)
        return dest is not None and not busy and dest.next_sync_at is None

    def loop() -> None:
        deadline = time.monotonic() + SYNC_TIMEOUT_S
        while True:
            worker.run_once()
            if settled():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"destination {destination_id} not synced after {SYNC_TIMEOUT_S:.0f} s")
            time.sleep(0.05)

    result: dict[str, Any] = {"source": _loaded_source_digest()}
    if spec.get("profile"):
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        loop()
        profiler.disable()
        result["wall_s"] = time.perf_counter() - started
        for order in ("tottime", "cumulative"):
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats(order).print_stats(int(spec.get("top", 25)))
            result[f"profile_{order}"] = text.getvalue()
    else:
        with PeakMemory() as memory:
            started, cpu0 = time.perf_counter(), time.process_time()
            loop()
            result["wall_s"] = time.perf_counter() - started
            result["cpu_s"] = time.process_time() - cpu0
        result.update(rss_start_mb=round(memory.start, 1), peak_growth_mb=round(memory.peak_mb, 1),
                      peak_rss_mb=round(memory.start + memory.peak_mb, 1), memory_method=memory.method,
                      rss_end_mb=round(_proc_status_mb("VmRSS"), 1))
    with service.engine.connect() as conn:
        found = conn.execute(select(audience_jobs).where(audience_jobs.c.destination_id == destination_id,
                                                         audience_jobs.c.id >= first_job)
                             .order_by(audience_jobs.c.id)).all()
    result["jobs"] = [{k: row._mapping[k] for k in (
        "id", "kind", "status", "rows_sent", "batches", "num_received", "num_invalid_entries", "rejected_count",
        "created_at", "started_at", "finished_at", "attempts", "error")} for row in found]
    result["requests"] = dict(graph.requests)
    result["body_bytes"] = dict(graph.body_bytes)
    result["graph_wait_s"] = round(graph.wait_s, 3)
    graph.close()
    service.close()
    return result


# ------------------------------------------------------------------------------------------------------
# Driving the service


class Deployment:
    """The API process (and the database) of one run, seen from the client."""

    def __init__(self, label: str, api: str, api_key: str, env: dict[str, str], procs: list[Proc],
                 sandbox: Proc, sandbox_url: str, work: Path, database: str | None) -> None:
        self.label = label
        self.api = api
        self.env = env
        self.procs = procs
        self.sandbox = sandbox
        self.sandbox_url = sandbox_url
        self.work = work
        self.database = database  # PostgreSQL database name (its backends' CPU is counted), None for SQLite
        self.http = httpx.Client(base_url=api, headers={"Authorization": f"Bearer {api_key}"}, timeout=900)
        self._accounts = 0

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, expect: tuple[int, ...] = (200, 201), **kwargs: Any) -> Any:
        answer = self.http.request(method, path, **kwargs)
        if answer.status_code not in expect:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:1000]}")
        return answer.json() if answer.content else None

    def ad_account(self) -> int:
        self._accounts += 1
        account_id = f"{secrets.randbelow(10**12) + 10**12}"
        body = {"name": f"bench-{self.label}-{self._accounts}", "account_id": account_id,
                "access_token": f"bench-token-{self._accounts}"}
        return int(self.call("POST", "/v1/ad-accounts", json=body)["id"])

    def load(self, audience_id: str, seed: int, ranges: list[tuple[int, int]]) -> dict[str, Any]:
        """Post the members of ``ranges``, one call per chunk; timed per call (reading the chunk is not)."""
        totals: Counter[str] = Counter()
        seconds = 0.0
        body_bytes = 0
        for first, count in ranges:
            body = chunk_bytes(seed, first, count)  # read outside the clock
            started = time.perf_counter()
            answer = self.call("POST", f"/v1/audiences/{audience_id}/members", content=body,
                               headers={"Content-Type": "application/json"})
            seconds += time.perf_counter() - started
            body_bytes += len(body)
            totals["received"] += answer["received"]
            totals["added"] += answer["added"]
            totals["updated"] += answer["updated"]
            totals["rejected"] += len(answer["rejected"])
            totals["warnings"] += len(answer["warnings"])
            member_count = answer["member_count"]
        return {"members": member_count, **totals, "calls": len(ranges), "seconds": round(seconds, 2),
                "members_per_s": round(totals["received"] / seconds, 1), "body_bytes": body_bytes,
                "bytes_per_member": round(body_bytes / max(1, totals["received"]), 1)}

    def link(self, audience_id: str, account: int) -> dict[str, Any]:
        return self.call("POST", f"/v1/audiences/{audience_id}/destinations",
                         json={"ad_account": account, "keys": KEYS, "mode": MODE})

    def sync(self, destination_id: int, label: str, profile: bool = False) -> dict[str, Any]:
        """A fresh worker process runs the due sync of ``destination_id`` to the end."""
        out = self.work / f"worker-{label}.json"
        spec = json.dumps({"destination_id": destination_id, "profile": profile, "out": str(out)})
        args = [sys.executable, "-m", "benchmarks.audiences", "--worker-child", spec]
        worker = Proc(f"worker-{label}", args, self.env, self.work)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        with CpuMeter([worker, self.sandbox, *self.procs], self.database) as cpu:
            code = worker.popen.wait(timeout=SYNC_TIMEOUT_S + 120)
        worker.stop()
        if code != 0:
            raise RuntimeError(f"worker for {label} failed ({code}):\n{worker.tail()}")
        # The worker has exited (and is reaped) by the end of the block, so /proc no longer has its CPU time:
        # take it from the reaped children's usage instead (the whole process: start-up included).
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        worker_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
        measured = cpu.as_dict()
        measured["cpu_s"].pop(worker.name, None)
        measured["cpu_s"] = {"worker": round(worker_cpu, 2), **measured["cpu_s"]}
        others = max(0.0, measured["other_processes_cpu_s"] - worker_cpu)
        measured["other_processes_cpu_s"] = round(others, 2)
        measured["other_processes_share"] = round(others / max(1e-9, measured["wall_s"] * measured["cpu_cores"]), 3)
        result = json.loads(out.read_text())
        result["cpu"] = measured
        return result


def _summarize_sync(result: dict[str, Any]) -> dict[str, Any]:
    jobs = result["jobs"]
    failed = [j for j in jobs if j["status"] != "done"]
    by_kind = Counter()
    for job in jobs:
        by_kind[job["kind"]] += job["rows_sent"]
    rows = sum(by_kind.values())
    created = min(j["created_at"] for j in jobs)
    finished = max(j["finished_at"] or 0 for j in jobs)
    seconds = max(1e-3, (finished - created) / 1000)
    sent = sum(result["body_bytes"].values())
    cpu = result["cpu"]["cpu_s"]
    summary = {
        "rows_sent": rows, "adds": by_kind.get("add", 0), "removes": by_kind.get("remove", 0),
        "rejected": sum(j["rejected_count"] or 0 for j in jobs),
        "invalid_at_meta": sum(j["num_invalid_entries"] or 0 for j in jobs),
        "jobs": len(jobs), "failed_jobs": failed, "batches": sum(j["batches"] for j in jobs),
        "seconds": round(seconds, 3), "rows_per_s": round(rows / seconds, 1),
        "worker_wall_s": round(result["wall_s"], 3), "worker_cpu_s": round(result.get("cpu_s", 0.0), 2),
        "graph_wait_s": result["graph_wait_s"],
        "requests": result["requests"], "body_bytes": result["body_bytes"], "bytes_sent": sent,
        "bytes_per_row": round(sent / rows, 1) if rows else None,
        "cpu": result["cpu"],
        "source": result["source"],
    }
    for key in ("rss_start_mb", "peak_rss_mb", "peak_growth_mb", "rss_end_mb", "memory_method"):
        if key in result:
            summary[key] = result[key]
    summary["sandbox_cpu_s"] = next((v for k, v in cpu.items() if k == "sandbox"), None)
    return summary


def _meta_view(sandbox_url: str, meta_id: str) -> dict[str, Any]:
    from metabridge.sandbox.control import SandboxControl

    with SandboxControl(sandbox_url, timeout=120) as control:
        view = control.audience(meta_id)
        logged = Counter()
        offset = 0
        while True:
            page = control.requests(limit=10_000, offset=offset)
            for record in page:
                if record.get("audience_id") == meta_id and record["status"] == 200:
                    logged[record["method"]] += record.get("rows_count") or 0
            if len(page) < 10_000:
                break
            offset += len(page)
    return {"member_count": view["member_count"], "counters": view["counters"], "logged_rows": dict(logged)}


def _first_sync(dep: Deployment, audience_id: str, members: int, tag: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Link a new destination (a new ad account) and run its first sync; returns (destination, summary)."""
    print(f"  [{dep.label}] first sync of {members:,} members ...", file=sys.stderr, flush=True)
    dest = dep.link(audience_id, dep.ad_account())
    first = _summarize_sync(dep.sync(dest["id"], f"{dep.label}-{tag}"))
    meta = _meta_view(dep.sandbox_url, dest["meta_audience_id"])
    first["meta"] = meta
    first["checks"] = {
        "rows sent == members": first["rows_sent"] == members,
        "sandbox received exactly those rows": meta["logged_rows"] == {"POST": members},
        "meta member_count == members": meta["member_count"] == members,
        "no failed job": not first["failed_jobs"],
    }
    return dest, first


def run_audience(dep: Deployment, seed: int, members: int) -> dict[str, Any]:
    """One audience: N/10 members loaded and synced (destination A, then detached), the other 9N/10 loaded,
    a first sync of all N (destination B), churn, the re-sync of B."""
    audience_id = f"{dep.label}-main"
    small = max(1, members // 10)
    dep.call("PUT", f"/v1/audiences/{audience_id}", json={"name": f"bench {audience_id}"})
    print(f"  [{dep.label}] loading {small:,} members ...", file=sys.stderr, flush=True)
    ranges = main_ranges(members)
    load_small = dep.load(audience_id, seed, ranges[:len(_ranges(0, small))])
    if load_small["members"] != small or load_small["rejected"]:
        raise RuntimeError(f"member load: {load_small}")
    dest_small, first_small = _first_sync(dep, audience_id, small, "small-first")
    dep.call("DELETE", f"/v1/audiences/{audience_id}/destinations/{dest_small['id']}", expect=(200, 204))
    print(f"  [{dep.label}] loading {members - small:,} more members ...", file=sys.stderr, flush=True)
    load_rest = dep.load(audience_id, seed, ranges[len(_ranges(0, small)):])
    if load_rest["members"] != members or load_rest["rejected"]:
        raise RuntimeError(f"member load: {load_rest}")
    load = _merge_loads(load_small, load_rest)
    dest, first = _first_sync(dep, audience_id, members, "first")
    out: dict[str, Any] = {
        "audience": audience_id, "members": members, "load": load,
        "small": {"members": small, "destination": dest_small["id"], "first_sync": first_small},
        "destination": dest["id"], "meta_audience_id": dest["meta_audience_id"], "first_sync": first,
    }

    n = max(1, members // CHURN_DIVISOR)
    print(f"  [{dep.label}] churn ({n:,} removed, {n:,} added, {n:,} re-posted unchanged) and re-sync ...",
          file=sys.stderr, flush=True)
    removed, reposted = _churn_picks(seed, members, n)
    new_members = [m for first_pid, count in _ranges(NEW_PIDS + members, n)
                   for m in chunk_members(seed, first_pid, count)]
    started = time.perf_counter()
    answer = dep.call("DELETE", f"/v1/audiences/{audience_id}/members", content=orjson.dumps({"members": removed}),
                      headers={"Content-Type": "application/json"})
    added = dep.call("POST", f"/v1/audiences/{audience_id}/members",
                     content=orjson.dumps({"members": new_members + reposted}),
                     headers={"Content-Type": "application/json"})
    churn_s = time.perf_counter() - started
    if answer["removed"] != n or added["added"] != n or added["updated"] != n or added["rejected"]:
        raise RuntimeError(f"churn: removed {answer}, added {added | {'warnings': len(added['warnings'])}}")
    resync = _summarize_sync(dep.sync(dest["id"], f"{dep.label}-resync"))
    meta = _meta_view(dep.sandbox_url, dest["meta_audience_id"])
    resync["meta"] = meta
    logged = {k: meta["logged_rows"].get(k, 0) - first["meta"]["logged_rows"].get(k, 0) for k in ("POST", "DELETE")}
    resync["meta_logged_rows"] = logged
    resync["expected"] = {"removes": n, "adds": n}
    resync["checks"] = {
        "removes == members removed": resync["removes"] == n,
        "adds == members added": resync["adds"] == n,
        "re-posted unchanged members not sent": resync["rows_sent"] == 2 * n,
        "sandbox received exactly those rows": logged == {"POST": n, "DELETE": n},
        "meta member_count == members": meta["member_count"] == members,
        "no failed job": not resync["failed_jobs"],
    }
    out["churn"] = {"removed": n, "added": n, "reposted_unchanged": n, "api_s": round(churn_s, 2)}
    out["resync"] = resync
    return out


def _merge_loads(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    merged = {k: a[k] + b[k] for k in ("received", "added", "updated", "rejected", "warnings", "calls", "body_bytes")}
    merged["seconds"] = round(a["seconds"] + b["seconds"], 2)
    merged["members"] = b["members"]
    merged["members_per_s"] = round(merged["received"] / merged["seconds"], 1)
    merged["bytes_per_member"] = round(merged["body_bytes"] / max(1, merged["received"]), 1)
    return merged


def run_profile(dep: Deployment, seed: int, ranges: list[tuple[int, int]]) -> dict[str, Any]:
    """A first sync under cProfile (its own audience of the members of ``ranges``; not a figure)."""
    audience_id = f"{dep.label}-profile"
    members = sum(count for _, count in ranges)
    dep.call("PUT", f"/v1/audiences/{audience_id}", json={"name": f"bench {audience_id}"})
    print(f"  [{dep.label}] profile: loading {members:,} members, first sync under cProfile ...", file=sys.stderr,
          flush=True)
    dep.load(audience_id, seed, ranges)
    dest = dep.link(audience_id, dep.ad_account())
    profiled = dep.sync(dest["id"], f"{dep.label}-profile", profile=True)
    rows = sum(j["rows_sent"] for j in profiled["jobs"])
    return {"members": members, "rows_sent": rows, "wall_s": round(profiled["wall_s"], 2),
            "tottime": profiled["profile_tottime"], "cumulative": profiled["profile_cumulative"]}


def _churn_picks(seed: int, members: int, n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Members to remove (every ``members/n``-th) and other members to post again re-spelled."""
    step = max(1, members // n)
    removed: list[dict[str, Any]] = []
    reposted: list[dict[str, Any]] = []
    for first, count in main_ranges(members):
        chunk = chunk_members(seed, first, count)
        for offset in range((-first) % step, count, step):
            if len(removed) < n:
                removed.append(chunk[offset])
            if len(reposted) < n and offset + step // 2 < count:
                again = dict(chunk[offset + step // 2])
                if "email" in again:
                    again["email"] = f"  {again['email'].strip().upper()} "
                reposted.append(again)
        del chunk
    return removed, reposted


# ------------------------------------------------------------------------------------------------------
# Row formatting: metabridge vs the SDK


def _format_metabridge(members: list[dict[str, Any]]) -> tuple[int, int]:
    from metabridge.audiences import MAX_ROWS, Rejection, build_row, columns_for, users_body
    from metabridge.identity import IdentityContext, normalize_member

    columns = columns_for(KEYS)
    ctx = IdentityContext()
    groups: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    rows = rejected = 0
    for raw in members:
        row = build_row(normalize_member(raw, ctx).values, columns, KEYS)
        if isinstance(row, Rejection):
            rejected += 1
            continue
        group = groups.setdefault(row.schema, [])
        group.append(row.cells)
        rows += 1
        if len(group) >= MAX_ROWS:
            users_body(row.schema, group)
            groups[row.schema] = []
    for schema, group in groups.items():
        if group:
            users_body(schema, group)
    return rows, rejected


def _format_sdk(members: list[dict[str, Any]]) -> tuple[int, int]:
    from facebook_business.adobjects.customaudience import CustomAudience

    schema = [CustomAudience.Schema.MultiKeySchema.extern_id, CustomAudience.Schema.MultiKeySchema.email,
              CustomAudience.Schema.MultiKeySchema.phone]
    rows = 0
    batch: list[list[str]] = []
    for raw in members:
        batch.append([str(raw.get("external_id") or ""), str(raw.get("email") or ""), str(raw.get("phone") or "")])
        if len(batch) == 10_000:
            rows += len(CustomAudience.format_params(schema, batch, is_raw=True)["payload"]["data"])
            batch = []
    if batch:
        rows += len(CustomAudience.format_params(schema, batch, is_raw=True)["payload"]["data"])
    return rows, 0


def _agreement(members: list[dict[str, Any]]) -> dict[str, Any]:
    """How the SDK's cells compare with metabridge's for the same members (not timed)."""
    from facebook_business.adobjects.customaudience import CustomAudience

    from metabridge.audiences import Row, build_row, columns_for, users_body
    from metabridge.identity import IdentityContext, normalize_member

    columns = columns_for(KEYS)
    fields = {"EXTERN_ID": "external_id", "EMAIL": "email", "PHONE": "phone"}
    ctx = IdentityContext()
    same: Counter[str] = Counter()
    given: Counter[str] = Counter()
    empty_hashed = 0
    empty = hashlib.sha256(b"").hexdigest()
    users = [[str(m.get(fields[c]) or "") for c in columns] for m in members]
    sdk_rows = CustomAudience.format_params(list(columns), users, is_raw=True)["payload"]["data"]
    mb_rows: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for raw, sdk_row in zip(members, sdk_rows):
        row = build_row(normalize_member(raw, ctx).values, columns, KEYS)
        if not isinstance(row, Row):
            continue
        mb_rows.setdefault(row.schema, []).append(row.cells)
        cells = dict(zip(row.schema, row.cells))
        for column, sdk_cell in zip(columns, sdk_row):
            if sdk_cell == empty:
                empty_hashed += 1
            if raw.get(fields[column]):
                given[column] += 1
                same[column] += cells.get(column) == sdk_cell
    # Bytes on the wire for the same rows: metabridge's JSON body vs the SDK's form body (payload=<json>).
    mb_bytes = sum(len(orjson.dumps(users_body(s, r[i:i + 10_000]))) for s, r in mb_rows.items()
                   for i in range(0, len(r), 10_000))
    sdk_bytes = sum(len(urllib.parse.urlencode({"payload": json.dumps(
        CustomAudience.format_params(list(columns), users[i:i + 10_000], is_raw=True)["payload"])}))
        for i in range(0, len(users), 10_000))
    return {
        "members": len(members),
        "identical_cells_share": {c: round(same[c] / given[c], 4) for c in columns if given[c]},
        "sdk_sha256_of_empty_cells": empty_hashed,
        "sdk_empty_extern_id_rows": sum(1 for u in users if not u[0]),
        "body_bytes": {"metabridge_json": mb_bytes, "sdk_form": sdk_bytes},
    }


def format_comparison(seed: int, ranges: list[tuple[int, int]], count: int, passes: int = 2) -> dict[str, Any]:
    members = [m for first, n in prefix_ranges(ranges, count) for m in chunk_members(seed, first, n)][:count]
    _format_metabridge(members[:2_000])  # warm-up: imports, lazily built tables
    _format_sdk(members[:2_000])
    best: dict[str, float] = {}
    wall: dict[str, float] = {}
    outcome: dict[str, Any] = {}
    for _ in range(passes):
        for impl, run in (("metabridge", _format_metabridge), ("sdk", _format_sdk)):
            gc.collect()
            started, cpu0 = time.perf_counter(), time.process_time()
            result = run(members)
            cpu = time.process_time() - cpu0
            if cpu < best.get(impl, float("inf")):
                best[impl], wall[impl] = cpu, time.perf_counter() - started
            outcome[impl] = {"rows": result[0], "rejected": result[1]}
    rates = {impl: round(outcome[impl]["rows"] / best[impl], 1) for impl in best}
    return {
        "members": len(members), "passes": passes,
        "metabridge": {**outcome["metabridge"], "cpu_s": round(best["metabridge"], 3),
                       "wall_s": round(wall["metabridge"], 3), "rows_per_cpu_s": rates["metabridge"],
                       "what": "normalize_member + build_row + users_body per 10,000 rows"},
        "sdk": {**outcome["sdk"], "cpu_s": round(best["sdk"], 3), "wall_s": round(wall["sdk"], 3),
                "rows_per_cpu_s": rates["sdk"],
                "what": "CustomAudience.format_params(schema, users, is_raw=True) per 10,000 rows"},
        "ratio_metabridge_vs_sdk": round(rates["metabridge"] / rates["sdk"], 3),
        "agreement": _agreement(members[:20_000]),
    }


# ------------------------------------------------------------------------------------------------------
# Runs


def _deployment(label: str, work: Path, sandbox: Proc, sandbox_url: str, database_url: str | None) -> tuple[Deployment, Proc]:
    from cryptography.fernet import Fernet

    api_key = f"mb_bench_{secrets.token_hex(8)}"
    port = _free_port()
    env = _base_env(work / f"{label}-data", api_key, Fernet.generate_key().decode())
    env.update({"METABRIDGE_PORT": str(port), "METABRIDGE_GRAPH_URL": sandbox_url,
                "METABRIDGE_AUDIENCE_DEBOUNCE_SECONDS": "0", "METABRIDGE_MAX_BODY_BYTES": str(MAX_BODY_BYTES)})
    if database_url:
        env["METABRIDGE_DATABASE_URL"] = database_url
    serve = Proc(f"api-{label}", _metabridge("serve", "--no-worker"), env, work)
    api = f"http://127.0.0.1:{port}"
    _wait_http(f"{api}/health", serve)
    database = database_url.rsplit("/", 1)[1] if database_url else None
    return Deployment(label, api, api_key, env, [serve], sandbox, sandbox_url, work, database), serve


def run_database(label: str, args: argparse.Namespace, work: Path, sandbox: Proc, sandbox_url: str,
                 database_url: str | None) -> dict[str, Any]:
    dep, serve = _deployment(label, work, sandbox, sandbox_url, database_url)
    try:
        run = run_audience(dep, args.seed, args.members)
        if args.profile:
            run["profile"] = run_profile(dep, args.seed, prefix_ranges(main_ranges(args.members), PROFILE_MEMBERS))
        return run
    finally:
        dep.close()
        serve.stop()


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("metabridge", "facebook-business", "SQLAlchemy", "psycopg", "orjson", "httpx", "uvicorn",
                 "phonenumbers"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "?"
    return out


def _goals(runs: dict[str, Any]) -> list[dict[str, Any]]:
    goals = []
    for label, run in runs.items():
        first, small = run["first_sync"], run["small"]
        rate = first["rows_per_s"]
        goals.append({"goal": f"[{label}] first sync of {run['members']:,} members ≥ {GOAL_ROWS_PER_S:,} rows/s "
                              "end to end (job created → done)",
                      "measured": f"{rate:,.0f} rows/s", "pass": rate >= GOAL_ROWS_PER_S and all(first["checks"].values())})
        big_growth, small_growth = first["peak_growth_mb"], small["first_sync"]["peak_growth_mb"]
        limit = MEMORY_FACTOR * small_growth + MEMORY_SLACK_MB
        goals.append({"goal": f"[{label}] worker memory bounded by the batch, not the audience: peak RSS growth "
                              f"at {run['members']:,} ≤ {MEMORY_FACTOR:g}× that at {small['members']:,} "
                              f"+ {MEMORY_SLACK_MB:g} MB",
                      "measured": f"{big_growth:.0f} MB vs {small_growth:.0f} MB (limit {limit:.0f})",
                      "pass": big_growth <= limit})
        resync = run["resync"]
        goals.append({"goal": f"[{label}] re-sync sends only the changed rows ({resync['expected']['removes']:,} "
                              f"removes + {resync['expected']['adds']:,} adds)",
                      "measured": f"{resync['removes']:,} removes + {resync['adds']:,} adds",
                      "pass": all(resync["checks"].values())})
    return goals


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f}"


def _syncs(run: dict[str, Any]) -> list[tuple[int, str, dict[str, Any]]]:
    return [(run["small"]["members"], "first sync", run["small"]["first_sync"]),
            (run["members"], "first sync", run["first_sync"]),
            (run["members"], "re-sync after 1% churn", run["resync"])]


def _print(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 190))
    meta = report["meta"]
    table = Table(title=f"audiences: syncs to the Graph API sandbox (keys {KEYS}, {MODE}; {meta['cpu_cores']} cores; "
                        f"load average {meta['loadavg_start']} at start, {meta['loadavg_end']} at end)")
    for column in ("db", "members", "sync", "rows sent", "+add / −remove", "s (job created→done)", "rows/s",
                   "worker CPU s", "sandbox CPU s", "others' CPU", "peak RSS MB", "RSS growth MB", "bytes sent",
                   "bytes/row", "requests"):
        table.add_column(column, justify="left" if column in ("db", "sync") else "right")
    for label, run in report["runs"].items():
        for members, what, sync in _syncs(run):
            cpu = sync["cpu"]
            table.add_row(
                label, f"{members:,}", what, f"{sync['rows_sent']:,}", f"+{sync['adds']:,} / −{sync['removes']:,}",
                f"{sync['seconds']:.2f}", f"{sync['rows_per_s']:,.0f}", f"{cpu['cpu_s']['worker']:.1f}",
                f"{cpu['cpu_s'].get('sandbox', 0):.1f}", f"{cpu['other_processes_share']:.0%}",
                f"{sync['peak_rss_mb']:.0f}", f"{sync['peak_growth_mb']:.0f}", f"{sync['bytes_sent'] / 1e6:,.2f} MB",
                "—" if sync["bytes_per_row"] is None else f"{sync['bytes_per_row']:.0f}",
                ", ".join(f"{m} {n}" for m, n in sorted(sync["requests"].items())))
    console.print(table)

    load = Table(title="member load: POST /v1/audiences/{id}/members in calls of 100,000, one client "
                       "(API process; not part of the sync figures)")
    for column in ("db", "members", "calls", "seconds", "members/s", "request MB", "rejected", "warnings",
                   "churn calls (2) s"):
        load.add_column(column, justify="left" if column == "db" else "right")
    for label, run in report["runs"].items():
        ld = run["load"]
        load.add_row(label, f"{ld['received']:,}", str(ld["calls"]), f"{ld['seconds']:.1f}",
                     f"{ld['members_per_s']:,.0f}", f"{ld['body_bytes'] / 1e6:,.1f}", str(ld["rejected"]),
                     f"{ld['warnings']:,}", f"{run['churn']['api_s']:.1f}")
    console.print(load)

    fmt = report.get("formatting")
    if fmt:
        ft = Table(title=f"row formatting of the same {fmt['members']:,} raw members, one process "
                         f"(CPU time, best of {fmt['passes']} interleaved passes)")
        for column in ("implementation", "what", "rows", "CPU s", "rows/s", "vs SDK"):
            ft.add_column(column, justify="left" if column in ("implementation", "what") else "right")
        for impl in ("metabridge", "sdk"):
            f = fmt[impl]
            ratio = fmt["ratio_metabridge_vs_sdk"] if impl == "metabridge" else 1.0
            ft.add_row(impl, f["what"], f"{f['rows']:,}", f"{f['cpu_s']:.2f}", f"{f['rows_per_cpu_s']:,.0f}",
                       f"{ratio:.2f}x")
        console.print(ft)
        ag = fmt["agreement"]
        console.print(
            f"Same cells? On {ag['members']:,} of those members, where the field is given, the SDK's cell equals "
            "metabridge's for " + ", ".join(f"{c} {v:.1%}" for c, v in ag["identical_cells_share"].items())
            + f". The SDK hashed {ag['sdk_sha256_of_empty_cells']:,} empty cells (sha256(\"\")) and left "
            f"{ag['sdk_empty_extern_id_rows']:,} rows with an empty EXTERN_ID (Meta rejects those). Body bytes for "
            f"these rows: metabridge JSON {ag['body_bytes']['metabridge_json'] / 1e6:.2f} MB, SDK form "
            f"{ag['body_bytes']['sdk_form'] / 1e6:.2f} MB.")

    goals = Table(title="goals (issue)")
    for column in ("goal", "measured", "result"):
        goals.add_column(column, justify="left" if column == "goal" else "right")
    for goal in report["goals"]:
        goals.add_row(goal["goal"], goal["measured"], "[green]PASS[/green]" if goal["pass"] else "[red]MISS[/red]")
    console.print(goals)

    for label, run in report["runs"].items():
        for members, what, sync in _syncs(run):
            bad = [name for name, ok in sync["checks"].items() if not ok]
            cpu = sync["cpu"]
            console.print(
                f"{label} · {members:,} · {what}: {sync['jobs']} jobs, {sync['batches']} batches; worker process "
                f"wall {sync['worker_wall_s']:.1f} s ({sync['graph_wait_s']:.1f} s waiting for the sandbox), CPU s "
                + ", ".join(f"{n} {v:.1f}" for n, v in cpu["cpu_s"].items())
                + f"; machine busy {cpu['machine_busy_share']:.0%}, other processes {cpu['other_processes_cpu_s']:.1f} "
                "CPU s; checks " + ("all passed" if not bad else "[red]FAILED: " + ", ".join(bad) + "[/red]"))
    for label, run in report["runs"].items():
        prof = run.get("profile")
        if prof:
            console.print(f"\n[bold]{label}: cProfile of a first sync of {prof['members']:,} members "
                          f"({prof['wall_s']:.1f} s under the profiler; not a figure)[/bold]")
            console.print(_trim_profile(prof["tottime"]), markup=False, highlight=False)
    console.print(
        "rows/s = rows sent / seconds from the first job's creation to the last job's end (the jobs' own "
        "timestamps). Peak RSS = the worker process's high-water mark (VmHWM, reset after start-up); growth = above "
        "its RSS after start-up (imports, engine, Graph client). Bytes = request bodies (JSON) the worker's "
        "GraphClient sent. CPU s = CPU of each process during the sync (the worker: its whole life); others' CPU = "
        "share of both cores used by processes outside this benchmark."
    )


def _trim_profile(text: str) -> str:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("ncalls")), 0)
    return "\n".join(line.replace(str(ROOT) + "/", "").replace(sys.prefix + "/", "")
                     for line in lines[max(0, start - 4):] if line.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks audiences", description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=DEFAULT_MEMBERS, help="members of the main audience")
    parser.add_argument("--quick", action="store_true", help=f"--members {QUICK_MEMBERS:,}")
    parser.add_argument("--postgres", action="store_true", help="also run on a fresh PostgreSQL database")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-format", action="store_true", help="skip the formatting comparison with the SDK")
    parser.add_argument("--format-members", type=int, default=FORMAT_MEMBERS)
    parser.add_argument("--profile", action="store_true", help="cProfile one more first sync (N/10 members)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--regenerate", action="store_true", help="rebuild the cached members")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                        help="before starting, wait up to S seconds for other work on the machine to stop")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, SQLite file)")
    parser.add_argument("--worker-child", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker_child:
        spec = json.loads(args.worker_child)
        result = worker_child(spec)
        Path(spec["out"]).write_text(json.dumps(result, default=str))
        return 0
    if args.quick:
        args.members = QUICK_MEMBERS

    started = time.perf_counter()
    loadavg_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    small = max(1, args.members // 10)
    n_churn = max(1, args.members // CHURN_DIVISOR)
    wanted = sorted(set(main_ranges(args.members) + _ranges(NEW_PIDS + args.members, n_churn)))
    generate_s = prepare_chunks(args.seed, wanted, args.regenerate)
    if args.wait_quiet:
        _wait_quiet(args.wait_quiet)

    work = Path(tempfile.mkdtemp(prefix="metabridge-bench-audiences-"))
    runs: dict[str, Any] = {}
    formatting = None
    try:
        sandbox_port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("METABRIDGE_")}
        sandbox = Proc("sandbox", _metabridge("sandbox", "--host", "127.0.0.1", "--port", str(sandbox_port)), env, work)
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        try:
            _wait_http(f"{sandbox_url}/_sandbox/health", sandbox)
            if not args.skip_sqlite:
                print("sqlite run ...", file=sys.stderr, flush=True)
                runs["sqlite"] = run_database("sqlite", args, work, sandbox, sandbox_url, None)
            if args.postgres:
                print("postgresql run ...", file=sys.stderr, flush=True)
                pg = _load_postgres_helpers()
                with pg.postgres_server() as server_url, pg.fresh_database(server_url) as database_url:
                    runs["postgresql"] = run_database("postgresql", args, work, sandbox, sandbox_url, database_url)
        finally:
            sandbox.stop()
        if not args.skip_format:
            print("row formatting: metabridge vs SDK ...", file=sys.stderr, flush=True)
            formatting = format_comparison(args.seed, main_ranges(args.members), args.format_members)
    except BaseException:
        print(f"benchmark failed; logs in {work}", file=sys.stderr)
        args.keep = True
        raise
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    report = {
        "benchmark": NAME,
        "meta": {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.system()} {platform.machine()}, {_cpu_model()}",
            "cpu_cores": os.cpu_count(),
            "loadavg_start": loadavg_start,
            "loadavg_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "versions": _versions(),
            "members": args.members,
            "small_members": small,
            "keys": KEYS,
            "mode": MODE,
            "dataset": f"benchmarks.synthetic people (seed {args.seed}) as audience members, see the module docstring",
            "member_load": "POST /v1/audiences/{id}/members, calls of 100,000, one client thread "
                           "(API: metabridge serve --no-worker, max_body_bytes 64 MB)",
            "worker": "a fresh process per sync running AudienceWorker.run_once() until the destination settled",
            "sandbox": "metabridge sandbox, its own process",
            "generate_s": round(generate_s, 1) if generate_s else "cached",
            "total_s": round(time.perf_counter() - started, 1),
        },
        "runs": runs,
        "formatting": formatting,
        "goals": _goals(runs),
    }
    _print(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwritten {RESULTS.relative_to(ROOT)} (total {report['meta']['total_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
