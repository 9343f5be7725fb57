"""audiences: a 1,000,000-member audience synced to the Graph API sandbox, then re-synced after 1% churn.

    ./dev.sh bench audiences                  # 1,000,000 members on SQLite
    ./dev.sh bench audiences --quick          # 100,000 members
    ./dev.sh bench audiences --postgres postgresql://postgres@127.0.0.1:5432/postgres   # also on PostgreSQL
    ./dev.sh bench audiences --profile        # and one more first sync under cProfile (hot spots)

Everything talks HTTP over 127.0.0.1, each part in its own process (on a 2-core machine they share the two
cores as a small deployment would):

- the sandbox (``metabridge sandbox``): the Meta side. It validates every row as Meta does (hashes, empty
  external ids, row widths) and keeps every member in memory; its counters say what it received;
- the API (``metabridge serve --no-worker``, debounce 0, body limit 64 MB): members are loaded with
  ``POST /v1/audiences/{id}/members`` in calls of 100,000 (the API's maximum);
- per sync, a fresh worker process (``--worker-child``) running ``AudienceWorker.run_once()`` until the
  destination has settled: what the audience thread of ``metabridge worker`` runs, alone, so the
  process's peak memory is the sync's own.

Runs: N/10 members are loaded and synced to a first destination (the memory reference), which is then
detached; the other 9N/10 are loaded and the whole audience is synced to a second destination (keys
``external_id + email + phone``, mirror: members with and without an external id go under two schemas).
Then 1% churn: N/200 members removed, N/200 new ones added and N/200 others posted again with their email
re-spelled (same person, same row), and the re-sync must send exactly N/200 removes + N/200 adds, which the
sandbox's own counters confirm.

- rows/s = rows sent / (last job finished - first job created), the jobs' own timestamps: reading the
  members, building rows, sending, the sandbox validating and storing them, recording what Meta holds;
- peak memory = the worker process's peak RSS (Linux VmHWM, reset after start-up) above its RSS after
  start-up, at N/10 and at N members: bounded by the batch size, it is the same at both sizes;
- bytes sent = the request bodies the worker's Graph client sent;
- the machine may be shared: before each sync the benchmark waits (``--wait-quiet``, up to 120 s) for a
  3-second window in which its cores are less than 25% busy, and each sync reports the CPU time other
  processes used while it ran;
- row formatting (this process, CPU time, best of 2): the official ``facebook-business`` SDK's
  ``CustomAudience.format_params(schema, users, is_raw=True)`` + its JSON step, against metabridge's
  normalization + row + body + JSON, on the same raw members (external_id, email, phone), and against what
  a sync does (rows from the stored normalized values).

Members come from :mod:`benchmarks.synthetic` (fixed seed; cached under ``benchmarks/results/cache``).
Results: ``benchmarks/results/audiences.json``.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks.events_core import PeakMemory, _loaded_source_digest, _proc_status_mb
from benchmarks.synthetic import DEFAULT_SEED

NAME = "audiences"
ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / f"{NAME}.json"
CACHE = RESULTS.parent / "cache"

DEFAULT_MEMBERS = 1_000_000
QUICK_MEMBERS = 100_000
CALL_MEMBERS = 100_000  # members per POST (the API's maximum)
FORMAT_MEMBERS = 100_000
KEYS = ["external_id", "email", "phone"]
CHURN_DIVISOR = 200  # N/200 removed + N/200 added: 1% of the audience
NEW_PIDS = 10_000_000  # person numbers of the members the churn adds start here
SYNC_TIMEOUT_S = 1_800.0

GOAL_ROWS_PER_S = 50_000
#: Memory "bounded by the batch size": the growth at N may exceed the one at N/10 by this factor plus
#: this many MB (memory proportional to the audience would be ~10x).
MEMORY_FACTOR, MEMORY_SLACK_MB = 1.5, 16.0


# -- data ---------------------------------------------------------------------------------------------------
_MEMBER_FIELDS = ("external_id", "email", "phone", "first_name", "last_name", "birthdate", "gender", "city",
                  "state", "zip", "country", "madid")
_BAD_VALUES = {"gender": {"other", "U", "prefer not to say"}, "country": {"N/A", "-", "Unknown"}}


def make_member(rng: Any, pid: int) -> dict[str, Any]:
    """A synthetic person's member fields. Values the API would reject are left out and the last 7 digits
    of the phone are the person's number (two people never share a phone, so Meta-side counts are exact)."""
    from benchmarks.synthetic import _BROKEN_EMAILS, make_person

    person = make_person(rng, pid)
    member = {k: person[k] for k in _MEMBER_FIELDS if k in person and person[k] not in _BAD_VALUES.get(k, ())}
    if member.get("email") in _BROKEN_EMAILS:
        del member["email"]
    if "phone" in member:
        digits = [i for i, ch in enumerate(member["phone"]) if ch.isdigit()]
        chars = list(member["phone"])
        for pos, digit in zip(digits[-7:], f"{pid % 10_000_000:07d}"):
            chars[pos] = digit
        member["phone"] = "".join(chars)
    if not any(k in member for k in ("external_id", "email", "phone")):
        member["external_id"] = f"cust_{pid:07d}"
    return member


def _chunk_path(seed: int, first: int, count: int) -> Path:
    """Cached chunks are keyed by the generator's source, so a changed generator never reuses stale data."""
    import inspect

    source = Path(__file__).with_name("synthetic.py").read_bytes() + inspect.getsource(make_member).encode()
    digest = hashlib.sha256(source + repr((seed, first, count)).encode()).hexdigest()[:12]
    return CACHE / f"audience-{seed}-{first}-{count}-{digest}.json"


def _generate(seed: int, first: int, count: int) -> None:
    import random

    rng = random.Random(seed * 1_000_003 + first)
    path = _chunk_path(seed, first, count)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(orjson.dumps({"members": [make_member(rng, pid) for pid in range(first, first + count)]}))
    partial.replace(path)


def chunks(first: int, count: int) -> list[tuple[int, int]]:
    """``(first person, count)`` of each API call loading persons ``first .. first + count - 1``."""
    return [(start, min(CALL_MEMBERS, first + count - start)) for start in range(first, first + count, CALL_MEMBERS)]


def main_chunks(n: int) -> list[tuple[int, int]]:
    """The audience's calls: its first N/10 members (the small sync), then the rest."""
    return chunks(0, n // 10) + chunks(n // 10, n - n // 10)


def prepare(seed: int, wanted: list[tuple[int, int]]) -> None:
    missing = [c for c in wanted if not _chunk_path(seed, *c).exists()]
    if missing:
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"generating {sum(n for _, n in missing):,} members (cached afterwards) ...", file=sys.stderr,
              flush=True)
        with ProcessPoolExecutor(max_workers=2) as pool:
            list(pool.map(_generate, *zip(*[(seed, a, b) for a, b in missing])))


def chunk_bytes(seed: int, first: int, count: int) -> bytes:
    return _chunk_path(seed, first, count).read_bytes()


def chunk_members(seed: int, first: int, count: int) -> list[dict[str, Any]]:
    return orjson.loads(chunk_bytes(seed, first, count))["members"]


# -- processes ----------------------------------------------------------------------------------------------
def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_s() -> float:
    """CPU seconds every core of the machine spent busy since boot (Linux /proc/stat)."""
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except OSError:
        return 0.0
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def wait_quiet(max_wait_s: float, share: float = 0.25, window_s: float = 3.0) -> float:
    """Wait (up to ``max_wait_s``) for a ``window_s`` window in which the machine's cores are less than
    ``share`` busy: the figures are then ours, not those of other work sharing the machine (which each sync
    still reports). Returns the seconds waited."""
    started = time.monotonic()
    cores = os.cpu_count() or 1
    while time.monotonic() - started < max_wait_s:
        busy = _machine_busy_s()
        time.sleep(window_s)
        if (_machine_busy_s() - busy) / (window_s * cores) < share:
            break
    return round(time.monotonic() - started, 1)


class Proc:
    """A child process with its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], work: Path) -> None:
        self.name = name
        self.log = work / f"{name}.log"
        with self.log.open("wb") as out:
            self.popen = subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def cpu_s(self) -> float:
        return _cpu_s(self.popen.pid)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: Proc, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not answer {url}:\n{proc.tail()}")


def _metabridge(*args: str) -> list[str]:
    return [sys.executable, "-m", "metabridge.cli.main", *args]


# -- the worker process (one per measured sync) -------------------------------------------------------------
def worker_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the audience worker until the destination has settled; report its jobs, bytes, memory, CPU."""
    from sqlalchemy import func, select

    from metabridge.config import load_settings
    from metabridge.delivery.audiences import AudienceWorker
    from metabridge.graph import GraphClient
    from metabridge.service import Service
    from metabridge.store import audience_jobs as jobs
    from metabridge.store.audiences import get_destination
    from metabridge.store.schema import audience_jobs

    class CountingGraphClient(GraphClient):
        """Adds up the requests and request body bytes it sends."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.requests: Counter[str] = Counter()
            self.body_bytes: Counter[str] = Counter()

        def _send(self, prepared: Any, *, secrets: Any) -> Any:
            self.requests[prepared.method] += 1
            self.body_bytes[prepared.method] += len(prepared.content or b"")
            return super()._send(prepared, secrets=secrets)

    settings = load_settings()
    service = Service.open(settings, migrate_schema=False)
    graph = CountingGraphClient(base_url=settings.graph_url, version=settings.graph_version,
                                timeout=settings.graph_timeout_seconds)
    worker = AudienceWorker(service.engine, settings, service.box, graph, worker_id=f"bench-{os.getpid()}")
    destination = int(spec["destination"])
    with service.engine.connect() as conn:  # also opens the pooled connection before the clock starts
        first_job = int(conn.execute(select(func.coalesce(func.max(audience_jobs.c.id), 0))).scalar_one()) + 1
    gc.collect()

    def settled() -> bool:
        with service.engine.connect() as conn:
            dest = get_destination(conn, destination)
            return dest is not None and dest.next_sync_at is None and not jobs.has_unfinished(conn, destination)

    def sync() -> None:
        deadline = time.monotonic() + SYNC_TIMEOUT_S
        while worker.run_once() or not settled():
            if time.monotonic() > deadline:
                raise TimeoutError(f"destination {destination} not synced after {SYNC_TIMEOUT_S:.0f} s")
            time.sleep(0.01)

    result: dict[str, Any] = {"source": _loaded_source_digest()}
    cpu0 = time.process_time()
    if spec.get("profile"):
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(sync)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
        result["profile"] = text.getvalue()
    else:
        with PeakMemory() as memory:
            sync()
        result.update(rss_start_mb=round(memory.start, 1), peak_growth_mb=round(memory.peak_mb, 1),
                      peak_rss_mb=round(memory.start + memory.peak_mb, 1),
                      rss_end_mb=round(_proc_status_mb("VmRSS"), 1))
    result["cpu_s"] = round(time.process_time() - cpu0, 2)
    with service.engine.connect() as conn:
        found = conn.execute(select(audience_jobs).where(audience_jobs.c.destination_id == destination,
                                                         audience_jobs.c.id >= first_job)).all()
    result["jobs"] = [{k: row._mapping[k] for k in ("kind", "status", "rows_sent", "batches", "num_invalid_entries",
                                                     "rejected_count", "created_at", "finished_at", "error")}
                      for row in found]
    result["requests"], result["body_bytes"] = dict(graph.requests), dict(graph.body_bytes)
    graph.close()
    service.close()
    return result


# -- one deployment (API + database) ------------------------------------------------------------------------
class Deployment:
    def __init__(self, label: str, work: Path, sandbox: Proc, sandbox_url: str, database_url: str,
                 quiet_s: float) -> None:
        from cryptography.fernet import Fernet

        self.label, self.work, self.sandbox, self.sandbox_url = label, work, sandbox, sandbox_url
        self.quiet_s = quiet_s
        api_key = f"mb_bench_{secrets.token_hex(8)}"
        port = _free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("METABRIDGE_")}
        self.env.update({
            "METABRIDGE_DATA_DIR": str(work / f"{label}-data"), "METABRIDGE_DATABASE_URL": database_url,
            "METABRIDGE_SECRET_KEY": Fernet.generate_key().decode(), "METABRIDGE_API_KEY": api_key,
            "METABRIDGE_GRAPH_URL": sandbox_url, "METABRIDGE_PORT": str(port), "METABRIDGE_LOG_LEVEL": "warning",
            "METABRIDGE_AUDIENCE_DEBOUNCE_SECONDS": "0", "METABRIDGE_MAX_BODY_BYTES": str(64_000_000),
        })
        self.api = Proc(f"api-{label}", _metabridge("serve", "--no-worker"), self.env, work)
        _wait_http(f"http://127.0.0.1:{port}/health", self.api)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {api_key}"},
                                 timeout=900)
        self.accounts = 0

    def close(self) -> None:
        self.http.close()
        self.api.stop()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.http.request(method, path, **kwargs)
        if answer.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:1000]}")
        return answer.json() if answer.content else None

    def members(self, method: str, audience: str, body: bytes) -> dict[str, Any]:
        return self.call(method, f"/v1/audiences/{audience}/members", content=body,
                         headers={"Content-Type": "application/json"})

    def load(self, audience: str, seed: int, calls: list[tuple[int, int]]) -> dict[str, Any]:
        """POST the members of ``calls``; only the calls are timed (reading the cached JSON is not)."""
        totals: Counter[str] = Counter()
        for first, count in calls:
            body = chunk_bytes(seed, first, count)
            started = time.perf_counter()
            answer = self.members("POST", audience, body)
            totals["seconds"] += time.perf_counter() - started
            totals["bytes"] += len(body)
            totals.update({k: answer[k] for k in ("received", "added", "updated")})
            totals["rejected"] += len(answer["rejected"])
        if totals["rejected"]:
            raise RuntimeError(f"members rejected while loading: {totals}")
        return dict(totals)

    def link(self, audience: str) -> dict[str, Any]:
        """A destination on a new ad account (a new Meta audience)."""
        self.accounts += 1
        account = self.call("POST", "/v1/ad-accounts", json={
            "name": f"bench-{self.accounts}", "account_id": str(10**12 + secrets.randbelow(10**12)),
            "access_token": f"bench-token-{self.accounts}"})
        return self.call("POST", f"/v1/audiences/{audience}/destinations",
                         json={"ad_account": account["id"], "keys": KEYS, "mode": "mirror"})

    def meta(self, meta_audience_id: str) -> dict[str, Any]:
        view = httpx.get(f"{self.sandbox_url}/_sandbox/audiences/{meta_audience_id}", timeout=120).json()
        return {"members": view["member_count"], "counters": view["counters"]}

    def sync(self, destination: dict[str, Any], tag: str, *, profile: bool = False) -> dict[str, Any]:
        """A fresh worker process runs the due sync of ``destination``; figures from its jobs and the sandbox."""
        waited = wait_quiet(self.quiet_s) if self.quiet_s else 0.0
        out = self.work / f"worker-{self.label}-{tag}.json"
        spec = json.dumps({"destination": destination["id"], "profile": profile, "out": str(out)})
        before = self.meta(destination["meta_audience_id"])["counters"]
        busy0, sandbox0, api0 = _machine_busy_s(), self.sandbox.cpu_s(), self.api.cpu_s()
        worker = Proc(f"worker-{self.label}-{tag}", [sys.executable, "-m", "benchmarks.audiences", "--worker-child",
                                                     spec], self.env, self.work)
        if worker.popen.wait(timeout=SYNC_TIMEOUT_S + 120) != 0:
            raise RuntimeError(f"worker {tag} failed:\n{worker.tail()}")
        busy, result = _machine_busy_s() - busy0, json.loads(out.read_text())
        meta = self.meta(destination["meta_audience_id"])
        jobs = result["jobs"]
        rows = Counter()
        for job in jobs:
            rows[job["kind"]] += job["rows_sent"]
        seconds = max(1e-3, (max(j["finished_at"] or 0 for j in jobs) - min(j["created_at"] for j in jobs)) / 1000)
        sent = sum(result["body_bytes"].values())
        cpu = {"worker": result["cpu_s"], "sandbox": round(self.sandbox.cpu_s() - sandbox0, 2),
               "api": round(self.api.cpu_s() - api0, 2)}
        received = {k: meta["counters"].get(k, 0) - before.get(k, 0) for k in (
            "rows_received", "rows_invalid", "adds_new", "adds_matched", "removes_matched", "removes_unmatched")}
        return {
            "adds": rows["add"], "removes": rows["remove"], "rows_sent": sum(rows.values()),
            "seconds": round(seconds, 2), "rows_per_s": round(sum(rows.values()) / seconds), "bytes_sent": sent,
            "bytes_per_row": round(sent / max(1, sum(rows.values())), 1), "requests": result["requests"],
            "batches": sum(j["batches"] for j in jobs), "failed_jobs": [j for j in jobs if j["status"] != "done"],
            "rejected": sum(j["rejected_count"] for j in jobs), "meta_members": meta["members"],
            "meta_received": received, "cpu_s": cpu,
            "others_cpu_s": round(max(0.0, busy - sum(cpu.values())), 1),  # other work on the machine meanwhile
            "waited_for_quiet_s": waited,
            **{k: result[k] for k in ("rss_start_mb", "peak_rss_mb", "peak_growth_mb", "profile", "source")
               if k in result},
        }


def run_deployment(dep: Deployment, seed: int, n: int, profile: bool) -> dict[str, Any]:
    audience = f"{dep.label}-main"
    small = n // 10
    dep.call("PUT", f"/v1/audiences/{audience}", json={"name": f"bench {audience}"})
    print(f"  [{dep.label}] loading {small:,} members, first sync ...", file=sys.stderr, flush=True)
    load_small = dep.load(audience, seed, chunks(0, small))
    dest_small = dep.link(audience)
    sync_small = dep.sync(dest_small, "small")
    dep.call("DELETE", f"/v1/audiences/{audience}/destinations/{dest_small['id']}")
    print(f"  [{dep.label}] loading {n - small:,} more members, first sync of {n:,} ...", file=sys.stderr, flush=True)
    load_rest = dep.load(audience, seed, chunks(small, n - small))
    load = {k: load_small[k] + load_rest[k] for k in load_small}
    dest = dep.link(audience)
    first = dep.sync(dest, "first")

    churn = n // CHURN_DIVISOR
    print(f"  [{dep.label}] churn: {churn:,} removed, {churn:,} added, {churn:,} re-posted re-spelled; re-sync ...",
          file=sys.stderr, flush=True)
    removed, reposted = _churn_picks(seed, n, churn)
    added = [m for c in chunks(NEW_PIDS + n, churn) for m in chunk_members(seed, *c)]
    gone = dep.members("DELETE", audience, orjson.dumps({"members": removed}))
    posted = dep.members("POST", audience, orjson.dumps({"members": added + reposted}))
    if (gone["removed"], posted["added"], posted["updated"]) != (churn, churn, churn):
        raise RuntimeError(f"churn: {gone}, {posted['added']} added, {posted['updated']} updated")
    resync = dep.sync(dest, "resync")
    out = {"members": n, "small": small, "load": load, "sync_small": sync_small, "first": first, "churn": churn,
           "resync": resync}
    out["checks"] = {
        f"first sync of {small:,}: sent {small:,}, the sandbox holds {small:,}":
            sync_small["adds"] == small and sync_small["meta_members"] == small and not sync_small["failed_jobs"],
        f"first sync of {n:,}: sent {n:,}, the sandbox received and holds {n:,}":
            first["adds"] == n and first["meta_received"]["rows_received"] == n and first["meta_members"] == n
            and not first["failed_jobs"],
        f"re-sync: sent {churn:,} removes + {churn:,} adds, nothing else":
            (resync["removes"], resync["adds"]) == (churn, churn),
        f"re-sync: the sandbox received {2 * churn:,} rows ({churn:,} removes matched, {churn:,} new members)":
            tuple(resync["meta_received"][k] for k in ("rows_received", "removes_matched", "adds_new", "adds_matched"))
            == (2 * churn, churn, churn, 0),
        f"re-sync: the sandbox holds {n:,}": resync["meta_members"] == n and not resync["failed_jobs"],
    }
    if profile:
        print(f"  [{dep.label}] one more first sync of {n:,} under cProfile ...", file=sys.stderr, flush=True)
        out["profile"] = dep.sync(dep.link(audience), "profile", profile=True)["profile"]
    return out


def _churn_picks(seed: int, n: int, churn: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every (n/churn)-th member to remove, and the one halfway after it to post again, email re-spelled."""
    step = n // churn
    removed: list[dict[str, Any]] = []
    reposted: list[dict[str, Any]] = []
    for first, count in main_chunks(n):
        members = chunk_members(seed, first, count)
        for pid in range(first + (-first) % step, first + count, step):
            removed.append(members[pid - first])
            if pid + step // 2 < first + count:
                again = dict(members[pid + step // 2 - first])
                if "email" in again:
                    again["email"] = f"  {again['email'].strip().upper()} "
                reposted.append(again)
    return removed[:churn], reposted[:churn]


# -- row formatting: metabridge vs the SDK -----------------------------------------------------------------
def _sdk_format(members: list[dict[str, Any]]) -> int:
    """What an integrator writes with the SDK: pick the values in schema order ("" when missing), then
    ``format_params`` (normalize + hash) and the SDK's JSON step, per 10,000 rows."""
    from facebook_business.adobjects.customaudience import CustomAudience
    from facebook_business.api import _top_level_param_json_encode

    schema = ["EXTERN_ID", "EMAIL", "PHONE"]
    size = 0
    for start in range(0, len(members), 10_000):
        users = [[str(m.get("external_id") or ""), str(m.get("email") or ""), str(m.get("phone") or "")]
                 for m in members[start:start + 10_000]]
        size += len(_top_level_param_json_encode(CustomAudience.format_params(schema, users, is_raw=True))["payload"])
    return size


def _metabridge_format(members: list[dict[str, Any]]) -> int:
    """metabridge from raw values: normalize + hash (identity rules), build rows, bodies, JSON."""
    from metabridge.audiences import RowBuilder, columns_for, users_body
    from metabridge.audiences.rows import schema_of
    from metabridge.identity import IdentityContext, normalize_member

    build, ctx = RowBuilder(columns_for(KEYS), KEYS), IdentityContext()
    groups: dict[str, list[tuple[str, ...]]] = {}
    size = 0
    for m in members:
        row = build(normalize_member({k: m[k] for k in KEYS if k in m}, ctx).values)
        if type(row) is tuple:
            group = groups.setdefault(row[0], [])
            group.append(row[1])
            if len(group) == 10_000:
                size += len(orjson.dumps(users_body(schema_of(row[0]), groups.pop(row[0]))))
    return size + sum(len(orjson.dumps(users_body(schema_of(k), g))) for k, g in groups.items())


def _sync_format(identities: list[str]) -> int:
    """What a sync does per member: decode the stored normalized values (JSON), build the row, body, JSON."""
    from metabridge.audiences import RowBuilder, columns_for, users_body
    from metabridge.audiences.rows import schema_of

    build, loads = RowBuilder(columns_for(KEYS), KEYS), orjson.loads
    groups: dict[str, list[tuple[str, ...]]] = {}
    for stored in identities:
        row = build(loads(stored))
        if type(row) is tuple:
            groups.setdefault(row[0], []).append(row[1])
    return sum(len(orjson.dumps(users_body(schema_of(k), g[i:i + 10_000]))) for k, g in groups.items()
               for i in range(0, len(g), 10_000))


def format_comparison(seed: int, n: int) -> dict[str, Any]:
    from facebook_business.adobjects.customaudience import CustomAudience

    from metabridge.identity import IdentityContext, normalize_member

    members: list[dict[str, Any]] = []
    for c in main_chunks(n):
        members += chunk_members(seed, *c)
        if len(members) >= FORMAT_MEMBERS:
            break
    members = members[:FORMAT_MEMBERS]
    identities = [normalize_member(m, IdentityContext()).values for m in members]
    stored = [orjson.dumps(values).decode() for values in identities]
    runs = {"sdk": (_sdk_format, members), "metabridge": (_metabridge_format, members),
            "metabridge sync": (_sync_format, stored)}
    best: dict[str, float] = {}
    size: dict[str, int] = {}
    for _ in range(2):
        for name, (run, data) in runs.items():
            gc.collect()
            cpu0 = time.process_time()
            size[name] = run(data)
            best[name] = min(best.get(name, float("inf")), time.process_time() - cpu0)
    # Do the two give Meta the same cells? (not timed)
    empty, agree, given = hashlib.sha256(b"").hexdigest(), Counter(), Counter()
    sdk_rows = CustomAudience.format_params(["EXTERN_ID", "EMAIL", "PHONE"], [
        [str(m.get(k) or "") for k in KEYS] for m in members[:20_000]], is_raw=True)["payload"]["data"]
    for m, values, sdk in zip(members, identities, sdk_rows):
        for key, column, cell in zip(KEYS, ("EXTERN_ID", "EMAIL", "PHONE"), sdk):
            if m.get(key):
                given[column] += 1
                agree[column] += values.get(column) == cell
    return {
        "members": len(members),
        "rows_per_cpu_s": {name: round(len(members) / best[name]) for name in runs},
        "cpu_s": {name: round(best[name], 3) for name in runs},
        "json_bytes": size,
        "sdk_same_cells": {c: round(agree[c] / given[c], 3) for c in given},
        "sdk_sha256_of_empty": sum(cell == empty for row in sdk_rows for cell in row),
        "sdk_rows_with_empty_extern_id": sum(1 for row in sdk_rows if not row[0]),
    }


# -- report -------------------------------------------------------------------------------------------------
def _goals(runs: dict[str, Any]) -> list[dict[str, Any]]:
    goals = []
    for label, run in runs.items():
        first, small = run["first"], run["sync_small"]
        goals.append({"goal": f"{label}: first sync of {run['members']:,} members ≥ {GOAL_ROWS_PER_S:,} rows/s",
                      "measured": f"{first['rows_per_s']:,} rows/s", "pass": first["rows_per_s"] >= GOAL_ROWS_PER_S})
        limit = MEMORY_FACTOR * small["peak_growth_mb"] + MEMORY_SLACK_MB
        goals.append({"goal": f"{label}: memory bounded by the batch: peak RSS growth at {run['members']:,} ≤ "
                              f"{MEMORY_FACTOR:g} × that at {run['small']:,} + {MEMORY_SLACK_MB:g} MB",
                      "measured": f"{first['peak_growth_mb']:.0f} MB vs {small['peak_growth_mb']:.0f} MB",
                      "pass": first["peak_growth_mb"] <= limit})
        goals.extend({"goal": f"{label}: {check}", "measured": "", "pass": ok} for check, ok in run["checks"].items())
    return goals


def _print(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 160))
    meta = report["meta"]
    table = Table(title=f"audience syncs to the sandbox over HTTP (keys {'+'.join(KEYS)}, mirror; "
                        f"{meta['cpu_cores']} cores, load average {meta['loadavg_start']} → {meta['loadavg_end']})")
    for column in ("db", "sync", "rows sent", "s", "rows/s", "peak RSS MB (growth)", "MB sent", "bytes/row",
                   "CPU s worker / sandbox", "others' CPU s"):
        table.add_column(column, justify="left" if column in ("db", "sync") else "right")
    for label, run in report["runs"].items():
        for what, sync in ((f"first sync of {run['small']:,}", run["sync_small"]),
                           (f"first sync of {run['members']:,}", run["first"]),
                           ("re-sync after 1% churn", run["resync"])):
            rate = "—" if sync is run["resync"] else f"{sync['rows_per_s']:,}"
            table.add_row(label, what, f"+{sync['adds']:,} / −{sync['removes']:,}", f"{sync['seconds']:.1f}", rate,
                          f"{sync['peak_rss_mb']:.0f} ({sync['peak_growth_mb']:.0f})",
                          f"{sync['bytes_sent'] / 1e6:,.1f}", f"{sync['bytes_per_row']:.0f}",
                          f"{sync['cpu_s']['worker']:.1f} / {sync['cpu_s']['sandbox']:.1f}",
                          f"{sync['others_cpu_s']:.1f}")
    console.print(table)
    console.print("rows/s: rows sent / (last job finished - first job created). Peak RSS: the worker process's "
                  "high-water mark, growth above its RSS after start-up. Others' CPU: what the rest of the machine "
                  "used meanwhile (PostgreSQL's server included), out of 2 x the sync's seconds. A re-sync reads "
                  "and compares every member: "
                  + "; ".join(f"{label} {run['members']:,} in {run['resync']['seconds']:.1f} s"
                              for label, run in report["runs"].items()) + ".")
    for label, run in report["runs"].items():
        load = run["load"]
        console.print(f"({label}) member load: {load['received']:,} members in {load['seconds']:.1f} s "
                      f"({load['received'] / load['seconds']:,.0f} members/s, {load['bytes'] / 1e6:,.0f} MB of JSON, "
                      f"calls of {CALL_MEMBERS:,}; API process: normalize, hash, store)")
    fmt = report.get("formatting")
    if fmt:
        ft = Table(title=f"row formatting of {fmt['members']:,} members to JSON request bodies (CPU time, best of 2)")
        for column in ("", "rows/s", "vs SDK", "JSON MB"):
            ft.add_column(column, justify="left" if not column else "right")
        what = {"sdk": "facebook-business SDK: CustomAudience.format_params + JSON, raw values",
                "metabridge": "metabridge: identity rules + row + body + JSON, raw values",
                "metabridge sync": "metabridge sync: stored normalized values (JSON) -> row + body + JSON"}
        for name, rate in fmt["rows_per_cpu_s"].items():
            ft.add_row(what[name], f"{rate:,}", f"{rate / fmt['rows_per_cpu_s']['sdk']:.2f}x",
                       f"{fmt['json_bytes'][name] / 1e6:.1f}")
        console.print(ft)
        console.print("Same cells as metabridge, where the value is given: "
                      + ", ".join(f"{c} {v:.1%}" for c, v in fmt["sdk_same_cells"].items())
                      + f" (SDK: phones without country codes or with leading zeros, lower-cased external ids); the "
                      f"SDK also sent {fmt['sdk_sha256_of_empty']:,} sha256(\"\") cells and "
                      f"{fmt['sdk_rows_with_empty_extern_id']:,} rows with an empty EXTERN_ID, which Meta rejects.")
    goals = Table(title="goals")
    for column in ("goal", "measured", ""):
        goals.add_column(column, justify="left" if column == "goal" else "right")
    for goal in report["goals"]:
        goals.add_row(goal["goal"], goal["measured"], "[green]PASS[/green]" if goal["pass"] else "[red]MISS[/red]")
    console.print(goals)
    for label, run in report["runs"].items():
        if "profile" in run:
            console.print(f"\n[bold]{label}: cProfile of one more first sync of {run['members']:,} members[/bold]")
            console.print(run["profile"].replace(str(ROOT) + "/", ""), markup=False, highlight=False)


# -- main ---------------------------------------------------------------------------------------------------
def _postgres_database(server_url: str) -> tuple[str, Any]:
    """A fresh database on ``server_url`` and a function dropping it."""
    import psycopg

    name = f"metabridge_bench_{secrets.token_hex(4)}"
    plain = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return plain.rsplit("/", 1)[0] + "/" + name, drop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks audiences", description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=DEFAULT_MEMBERS)
    parser.add_argument("--quick", action="store_true", help=f"--members {QUICK_MEMBERS:,}")
    parser.add_argument("--postgres", metavar="URL", help="also run on a fresh database of this PostgreSQL server")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-format", action="store_true", help="skip the row formatting comparison")
    parser.add_argument("--profile", action="store_true", help="one more first sync under cProfile")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, SQLite file)")
    parser.add_argument("--wait-quiet", type=float, default=120.0, metavar="S",
                        help="before each sync, wait up to S seconds for other work on the machine to calm down "
                             "(0: do not wait)")
    parser.add_argument("--worker-child", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker_child:
        spec = json.loads(args.worker_child)
        Path(spec["out"]).write_text(json.dumps(worker_child(spec), default=str))
        return 0
    n = QUICK_MEMBERS if args.quick else args.members
    if n < 2 * CHURN_DIVISOR:
        parser.error(f"--members must be at least {2 * CHURN_DIVISOR}")

    started = time.perf_counter()
    loadavg_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    prepare(args.seed, main_chunks(n) + chunks(NEW_PIDS + n, n // CHURN_DIVISOR))
    work = Path(tempfile.mkdtemp(prefix="metabridge-bench-audiences-"))
    runs: dict[str, Any] = {}
    try:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("METABRIDGE_")}
        sandbox = Proc("sandbox", _metabridge("sandbox", "--host", "127.0.0.1", "--port", str(port)), env, work)
        sandbox_url = f"http://127.0.0.1:{port}"
        try:
            _wait_http(f"{sandbox_url}/_sandbox/health", sandbox)
            targets: list[tuple[str, str, Any]] = []
            if not args.skip_sqlite:
                targets.append(("sqlite", f"sqlite:///{work / 'metabridge.db'}", None))
            if args.postgres:
                targets.append(("postgresql", *_postgres_database(args.postgres)))
            for label, url, drop in targets:
                print(f"{label} ...", file=sys.stderr, flush=True)
                dep = Deployment(label, work, sandbox, sandbox_url, url, args.wait_quiet)
                try:
                    runs[label] = run_deployment(dep, args.seed, n, args.profile)
                finally:
                    dep.close()
                    if drop:
                        drop()
        finally:
            sandbox.stop()
        formatting = None
        if not args.skip_format:
            print("row formatting: metabridge vs the SDK ...", file=sys.stderr, flush=True)
            formatting = format_comparison(args.seed, n)
    except BaseException:
        print(f"benchmark failed; logs in {work}", file=sys.stderr)
        args.keep = True
        raise
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    versions = {"python": platform.python_version()}
    for dist in ("facebook-business", "SQLAlchemy", "psycopg", "orjson", "httpx", "uvicorn"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "?"
    report = {
        "benchmark": NAME,
        "meta": {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "members": n, "keys": KEYS,
            "machine": f"{platform.system()} {platform.machine()}", "cpu_cores": os.cpu_count(),
            "loadavg_start": loadavg_start, "loadavg_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "sandbox": "metabridge sandbox in its own process", "versions": versions,
            "total_s": round(time.perf_counter() - started, 1),
        },
        "runs": runs,
        "formatting": formatting,
        "goals": _goals(runs),
    }
    _print(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwritten {RESULTS.relative_to(ROOT)} ({report['meta']['total_s']:.0f} s)")
    return 0 if all(goal["pass"] for goal in report["goals"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
