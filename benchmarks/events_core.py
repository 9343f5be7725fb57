"""events-core: incoming events -> Conversions API request bodies, metabridge vs the official SDK.

Measured work, the same scope on both sides, per data set:

- **metabridge**: ``EventPipeline.process`` on every raw event (parse, map, normalize + hash customer data,
  check), ``batched_bodies`` (<= 1,000 events) and ``encode_body`` of every body to bytes;
- **SDK** (``facebook-business``): build ``UserData`` / ``CustomData`` / ``Content`` / ``Event`` from the
  same raw events, ``EventRequest(...).get_params()`` per batch of <= 1,000 (normalize + hash + per-event
  ``json.dumps``) and the transport's JSON encoding to bytes; see :mod:`benchmarks.sdk_baseline`.

Data sets (:mod:`benchmarks.synthetic`, fixed seed): ``repeated`` = N events from N/5 people (100,000 from
20,000 by default), ``distinct`` = N events from N people. Generation is not timed.

Method: every run is a fresh subprocess (so no cache of one run helps the next, and peak memory is that
process's own), pinned to one CPU core (the quietest one over 0.25 s before it starts; the machine may be
shared). It decodes the pre-generated events from JSON, as a service gets them from a request (so no two
events share a string object), warms up on 500 events of *other* people (imports, lazily loaded tables),
moves the loaded data out of the cyclic GC's reach (``gc.freeze()``: a service holds one request's events,
not 100,000; without it every full collection re-scans the data set, which costs the SDK, which allocates
more, the most), then times one pass by its CPU time (``--clock wall`` for wall-clock time; the process is
single-threaded and pinned, so CPU time is its one-core time without the waits other processes cause).
Rate = best of ``--runs`` runs (interleaved metabridge/SDK).
Peak memory = peak resident memory of the timed pass above the process's resident memory when the pass
starts (Linux: ``VmHWM`` after resetting it through ``/proc/self/clear_refs``; elsewhere ``ru_maxrss``
growth), max over runs; or with ``--memory tracemalloc`` the ``tracemalloc`` peak of one extra traced pass
(Python allocations only; tracing slows the pass, so its time is not used).

Both sides stream: bodies are encoded and dropped batch by batch, as a sender would post them.

Run: ``python -m benchmarks events_core [--events N] [--runs 3] [--memory tracemalloc] [--profile metabridge]``.
Generated data sets are cached in ``benchmarks/results/cache`` (git-ignored); ``--regenerate`` rebuilds them.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from benchmarks.synthetic import DATASETS, DEFAULT_SEED, NOW_MS, dataset, generate_events

NAME = "events_core"
ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / f"{NAME}.json"
#: Generated data sets, reused while the generator and parameters are unchanged (results/ is git-ignored).
CACHE = RESULTS.parent / "cache"
IMPLEMENTATIONS = ("metabridge", "sdk")
#: metabridge must reach this multiple of the SDK's rate (issue goal, one core).
GOALS: Mapping[str, float] = {"repeated": 10.0, "distinct": 3.0}
DEFAULT_EVENTS = 100_000
WARMUP_EVENTS = 500
PIXEL_ID = "1"


# ------------------------------------------------------------------------------------------------------
# The two implementations. Each returns a runner: raw events -> counts, doing all the measured work.


@dataclass
class Outcome:
    events: int
    sent: int
    requests: int
    bytes: int
    rejected: dict[str, int]
    value_issues: dict[str, int]


def metabridge_runner() -> Any:
    from metabridge.events import ConnectionSettings, EventPipeline, batched_bodies, encode_body

    settings = ConnectionSettings(pixel_id=PIXEL_ID, default_country="us")

    def run(raw_events: list[dict[str, Any]]) -> Outcome:
        pipeline = EventPipeline(settings)
        skipped: Counter[str] = Counter()
        issues: Counter[str] = Counter()

        def to_send(events: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
            process = pipeline.process
            for index, raw in enumerate(events):
                decision = process(raw, index=index, now_ms=NOW_MS)
                for warning in decision.warnings:
                    issues[warning.field] += 1
                if decision.action == "send":
                    yield decision.server_event
                else:
                    skipped[decision.reason or "?"] += 1

        sent = requests = size = 0
        for body in batched_bodies(to_send(raw_events)):
            size += len(encode_body(body))
            sent += len(body["data"])
            requests += 1
        return Outcome(len(raw_events), sent, requests, size, dict(skipped), dict(issues))

    return run


def sdk_runner() -> Any:
    from benchmarks.sdk_baseline import SdkBaseline

    def run(raw_events: list[dict[str, Any]]) -> Outcome:
        baseline = SdkBaseline(PIXEL_ID)
        for _body in baseline.bodies(raw_events):
            pass  # bytes are counted by the baseline; a real sender would post them here
        return Outcome(
            len(raw_events), baseline.sent, baseline.requests, baseline.bytes,
            dict(baseline.rejected_events), dict(baseline.dropped_values),
        )

    return run


RUNNERS = {"metabridge": metabridge_runner, "sdk": sdk_runner}


# ------------------------------------------------------------------------------------------------------
# Worker: one timed pass in this (fresh) process.


def _pin(cpu: int | None) -> str:
    """Pin this process to one core (``cpu``, else the first one it may use)."""
    try:
        target = cpu if cpu is not None else min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {target})
        return "one core"
    except (AttributeError, OSError, ValueError):
        return "not pinned"


def _cpu_idle_ticks() -> dict[int, int]:
    ticks = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            ticks[int(name[3:])] = int(fields[3]) + int(fields[4])  # idle + iowait
    return ticks


def _quietest_cpu(window_s: float = 0.25) -> int | None:
    """The allowed core that was idle the most over a short window (other work on the machine varies)."""
    try:
        allowed = os.sched_getaffinity(0)
        before = _cpu_idle_ticks()
        time.sleep(window_s)
        after = _cpu_idle_ticks()
    except (AttributeError, OSError):
        return None
    idle = {cpu: after[cpu] - before.get(cpu, 0) for cpu in after if cpu in allowed}
    return max(sorted(idle), key=idle.__getitem__) if idle else None


def _maxrss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def _proc_status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise KeyError(key)


class PeakMemory:
    """Peak resident memory of this process during a block, above its resident memory at the start.

    Linux: the kernel's high-water mark (``VmHWM``) is reset first (``/proc/self/clear_refs`` = 5), so the
    peak belongs to the block alone even when loading the data peaked higher. Elsewhere: growth of
    ``ru_maxrss``, which misses peaks below an earlier high-water mark.
    """

    method = "rss"

    def __enter__(self) -> PeakMemory:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.start = _proc_status_mb("VmRSS")
            self.method = "VmHWM"
        except (OSError, KeyError):
            self.start = _maxrss_mb()
            self.method = "ru_maxrss"
        return self

    def __exit__(self, *exc: object) -> None:
        end = _proc_status_mb("VmHWM") if self.method == "VmHWM" else _maxrss_mb()
        self.peak_mb = max(0.0, end - self.start)


def worker(impl: str, data_path: str, warmup_path: str, memory: str, profile: bool, cpu: int | None) -> dict[str, Any]:
    pinned = _pin(cpu)
    # Decoded from JSON like a request body: every event has its own objects (no string shared between the
    # events of one person, so no hash is computed once for many events).
    events = orjson.loads(Path(data_path).read_bytes())
    warmup = orjson.loads(Path(warmup_path).read_bytes())
    run = RUNNERS[impl]()
    run(warmup)
    del warmup
    gc.collect()
    # The whole data set sits in memory only because a benchmark loads it up front; a service holds one
    # request's events at a time. Freezing it keeps the cyclic GC from re-scanning it on every full
    # collection, for both implementations; everything a pass allocates is still collected as usual.
    gc.freeze()
    result: dict[str, Any] = {"impl": impl, "pinned": pinned, "source": _loaded_source_digest()}
    if memory == "tracemalloc":
        import tracemalloc

        tracemalloc.start()
        tracemalloc.reset_peak()
        start_current = tracemalloc.get_traced_memory()[0]
        run(events)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        result["peak_mb"] = (peak - start_current) / 1e6
        return result
    if profile:
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        outcome = run(events)
        profiler.disable()
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("tottime").print_stats(15)
        result["profile"] = text.getvalue()
        result["outcome"] = outcome.__dict__
        return result
    with PeakMemory() as memory_use:
        start, start_cpu = time.perf_counter(), time.process_time()
        outcome = run(events)
        cpu_seconds = time.process_time() - start_cpu
        seconds = time.perf_counter() - start
    result.update(seconds=seconds, cpu_seconds=cpu_seconds, peak_mb=memory_use.peak_mb, memory=memory_use.method,
                  outcome=outcome.__dict__)
    return result


def _spawn(impl: str, data: Path, warmup: Path, memory: str = "rss", profile: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.events_core", "--worker", impl, "--data", str(data),
           "--warmup", str(warmup), "--memory", memory]
    cpu = _quietest_cpu()
    if cpu is not None:
        cmd += ["--cpu", str(cpu)]
    if profile:
        cmd.append("--profile-worker")
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{impl} worker failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------------
# Driver


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("metabridge", "facebook-business", "orjson", "phonenumbers", "pycountry"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "?"
    return out


def _loaded_source_digest() -> str:
    """Digest of the metabridge source files this process has imported: ties a result to the exact code
    measured, and shows when runs measured different code (others may be editing the tree meanwhile)."""
    files = sorted(
        Path(module.__file__) for name, module in list(sys.modules.items())
        if name.split(".")[0] == "metabridge" and getattr(module, "__file__", None)
    )
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12] if files else "-"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _cache_key(*parts: object) -> str:
    """Generated data depends on the generator's source and the parameters: a new source, a new file."""
    source = Path(__file__).with_name("synthetic.py").read_bytes()
    return hashlib.sha256(source + repr(parts).encode()).hexdigest()[:12]


def _cached(path: Path, build: Any, regenerate: bool) -> tuple[Path, float]:
    """Pickle ``build()`` to ``path`` unless already there; returns the path and seconds spent generating."""
    if path.exists() and not regenerate:
        return path, 0.0
    started = time.perf_counter()
    events = build()
    seconds = time.perf_counter() - started
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.name.rsplit("-", 1)[0]  # drop stale versions of this data set (older generator source)
    for stale in path.parent.glob(f"{stem}-*.json"):
        stale.unlink()
    partial = path.with_suffix(".tmp")
    partial.write_bytes(orjson.dumps(events))
    partial.replace(path)
    return path, seconds


def _prepare(n_events: int, seed: int, names: Iterable[str], regenerate: bool) -> tuple[dict[str, Path], Path, dict]:
    """Generate (or reuse from ``results/cache``) the data sets and the warm-up events, as JSON files."""
    paths, info = {}, {}
    for name in names:
        spec = dataset(name, n_events, seed)
        path = CACHE / f"{name}-{n_events}-{seed}-{_cache_key(name, n_events, seed)}.json"
        paths[name], seconds = _cached(path, spec.build, regenerate)
        info[name] = {"events": spec.n_events, "people": spec.n_people, "seed": spec.seed,
                      "generate_s": round(seconds, 2) if seconds else "cached"}
    # Warm-up: other people (other seed, other person ids), so it cannot pre-fill any measured value.
    warm_path, _ = _cached(
        CACHE / f"warmup-{WARMUP_EVENTS}-{seed + 1}-{_cache_key('warmup', WARMUP_EVENTS, seed + 1)}.json",
        lambda: generate_events(WARMUP_EVENTS, WARMUP_EVENTS, seed=seed + 1, first_person_id=10_000_000),
        regenerate,
    )
    return paths, warm_path, info


def _summarize(
    name: str, impl: str, runs: list[dict[str, Any]], traced: dict[str, Any] | None, clock: str
) -> dict[str, Any]:
    outcome = runs[0]["outcome"]
    for other in runs[1:]:
        if other["outcome"] != outcome:
            raise RuntimeError(f"{impl} on {name}: runs produced different output counts")
    best = min(r["cpu_seconds" if clock == "cpu" else "seconds"] for r in runs)
    events = outcome["events"]
    return {
        "dataset": name,
        "implementation": impl,
        "events": events,
        "clock": clock,
        "run_seconds_wall": [round(r["seconds"], 4) for r in runs],
        "run_seconds_cpu": [round(r["cpu_seconds"], 4) for r in runs],
        "best_seconds": round(best, 4),
        "events_per_s": round(events / best, 1),
        "ms_per_1k_events": round(best * 1000 * 1000 / events, 3),
        "peak_mb": round(traced["peak_mb"] if traced else max(r["peak_mb"] for r in runs), 1),
        "sent": outcome["sent"],
        "requests": outcome["requests"],
        "bytes_per_event": round(outcome["bytes"] / max(outcome["sent"], 1), 1),
        "rejected_events": sum(outcome["rejected"].values()),
        "rejected_by_reason": outcome["rejected"],
        "value_issues": sum(outcome["value_issues"].values()),
        "value_issues_by_field": outcome["value_issues"],
        "pinned": runs[0]["pinned"],
        "memory_probe": runs[0].get("memory", "tracemalloc") if not traced else "tracemalloc",
    }


def _contention(results: list[dict[str, Any]]) -> float:
    """Largest wall/CPU time ratio of any run: near 1.0 when the pinned core was free for the pass."""
    ratios = [w / c for r in results for w, c in zip(r["run_seconds_wall"], r["run_seconds_cpu"]) if c > 0]
    return round(max(ratios), 2) if ratios else 1.0


def _print(results: list[dict[str, Any]], ratios: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 140))  # wide enough for the table when piped to a file
    table = Table(title=f"events-core: raw events -> CAPI request bytes (best of {meta['runs']} fresh-process runs, "
                        f"{meta['clock']} time, one core)")
    for column in ("dataset", "implementation", "events/s", "ms per 1k events", "peak MB", "sent",
                   "rejected events", "value issues", "bytes/event"):
        table.add_column(column, justify="left" if column in ("dataset", "implementation") else "right")
    for r in results:
        table.add_row(
            f"{r['dataset']} ({meta['datasets'][r['dataset']]['people']:,} people)", r["implementation"],
            f"{r['events_per_s']:,.0f}", f"{r['ms_per_1k_events']:.1f}", f"{r['peak_mb']:.1f}", f"{r['sent']:,}",
            f"{r['rejected_events']:,}", f"{r['value_issues']:,}", f"{r['bytes_per_event']:.0f}",
        )
    console.print(table)
    ratio_table = Table(title="metabridge / SDK (events/s)")
    for column in ("dataset", "ratio", "goal", "result"):
        ratio_table.add_column(column, justify="left" if column == "dataset" else "right")
    for r in ratios:
        ratio_table.add_row(r["dataset"], f"{r['ratio']:.2f}x", f"≥{r['goal']:g}x",
                            "[green]PASS[/green]" if r["pass"] else "[red]MISS[/red]")
    console.print(ratio_table)
    if meta["source_changed_during_run"]:
        console.print("[red]warning: metabridge's source changed during the run; runs may have measured "
                      "different code. Run again.[/red]")
    if meta["contention"] > 1.15:
        console.print(
            f"[yellow]note: other work shared the pinned core (a run's wall time was up to "
            f"{meta['contention']:.2f}x its CPU time); CPU-time rates are the reliable figures.[/yellow]"
        )
    console.print(
        f"events/s = events / {meta['clock_detail']} of the timed pass. peak MB = {meta['memory_method']}. rejected events: metabridge = skipped (invalid / policy), "
        "SDK = refused by its API. value issues: metabridge = customer values left out or flagged "
        "(decision warnings), SDK = values left out because the SDK would raise (em, ph, country) "
        "or has no enum for them (gender)."
    )
    console.print(
        f"{meta['events']:,} events per data set, seed {meta['seed']}, {meta['cpu']} ({meta['cpu_count']} cores), "
        f"each run {meta['pinned']} (the quietest at its start); "
        f"metabridge {meta['versions']['metabridge']} (source {', '.join(meta['metabridge_source'])}), facebook-business {meta['versions']['facebook-business']}, "
        f"Python {meta['versions']['python']}. Results: {meta['results_file']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks events_core", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="events per data set (default 100000)")
    parser.add_argument("--runs", type=int, default=3, help="fresh-process runs per implementation (best counts)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="time a pass by the process's CPU time (default; robust when other work shares the "
                        "machine) or by wall-clock time")
    parser.add_argument("--memory", choices=("rss", "tracemalloc"), default="rss",
                        help="rss: ru_maxrss growth of the timed run; tracemalloc: one extra traced run")
    parser.add_argument("--profile", choices=IMPLEMENTATIONS,
                        help="only profile this implementation (cProfile, top 15 by tottime) and exit")
    parser.add_argument("--regenerate", action="store_true", help="regenerate the cached data sets")
    parser.add_argument("--no-json", action="store_true", help=f"do not write {RESULTS.relative_to(ROOT)}")
    # internal: one worker pass
    parser.add_argument("--worker", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", help=argparse.SUPPRESS)
    parser.add_argument("--profile-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.worker, args.data, args.warmup, args.memory, args.profile_worker, args.cpu)))
        return 0

    started = time.perf_counter()
    paths, warm_path, data_info = _prepare(args.events, args.seed, args.datasets, args.regenerate)
    if args.profile:
        for name in args.datasets:
            res = _spawn(args.profile, paths[name], warm_path, profile=True)
            print(f"\n=== cProfile: {args.profile} on {name} ({args.events:,} events), top 15 by tottime; "
                  f"metabridge source {res['source']} ===")
            print(res["profile"])
        return 0
    results, ratios = [], []
    sources: set[str] = set()
    for name in args.datasets:
        runs: dict[str, list[dict[str, Any]]] = {impl: [] for impl in IMPLEMENTATIONS}
        for index in range(args.runs):
            order = IMPLEMENTATIONS if index % 2 == 0 else IMPLEMENTATIONS[::-1]
            for impl in order:
                runs[impl].append(_spawn(impl, paths[name], warm_path))
        sources.update(r["source"] for r in runs["metabridge"])
        traced = {impl: _spawn(impl, paths[name], warm_path, memory="tracemalloc")
                  for impl in IMPLEMENTATIONS} if args.memory == "tracemalloc" else {}
        summary = {impl: _summarize(name, impl, runs[impl], traced.get(impl), args.clock) for impl in IMPLEMENTATIONS}
        results.extend(summary[impl] for impl in IMPLEMENTATIONS)
        ratio = summary["metabridge"]["events_per_s"] / summary["sdk"]["events_per_s"]
        ratios.append({"dataset": name, "ratio": round(ratio, 3), "goal": GOALS[name], "pass": ratio >= GOALS[name]})

    meta = {
        "benchmark": NAME,
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "events": args.events,
        "seed": args.seed,
        "runs": args.runs,
        "clock": args.clock,
        "clock_detail": "CPU time of the pinned worker (time.process_time)" if args.clock == "cpu"
        else "wall-clock time (time.perf_counter)",
        "contention": _contention(results),
        "datasets": data_info,
        "memory_method": (
            "tracemalloc peak of one extra traced run (Python allocations during the pass)"
            if args.memory == "tracemalloc"
            else f"peak resident memory of the timed pass above the process's resident memory at its start "
            f"({results[0].get('memory_probe', 'rss') if results else 'rss'}; max of runs)"
        ),
        "cpu": _cpu(),
        "cpu_count": os.cpu_count(),
        "pinned": results[0]["pinned"] if results else "?",
        "versions": _versions(),
        "metabridge_source": sorted(sources),
        "source_changed_during_run": len(sources) > 1,
        "wall_s": round(time.perf_counter() - started, 1),
        "results_file": str(RESULTS.relative_to(ROOT)) if not args.no_json else "(not written)",
    }
    if not args.no_json:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({"meta": meta, "results": results, "ratios": ratios}, indent=2) + "\n")
    _print(results, ratios, meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
