"""Run benchmarks by name.

    python -m benchmarks                      # every benchmark, default options
    python -m benchmarks events_core          # one benchmark
    python -m benchmarks events_core --events 20000 --runs 1
    python -m benchmarks --list

Options after the benchmark name go to that benchmark (``python -m benchmarks events_core --help``).
"""

from __future__ import annotations

import importlib
import sys

#: Benchmark name -> module (each module has ``main(argv) -> int``).
BENCHMARKS: dict[str, str] = {
    "events_core": "benchmarks.events_core",
    "delivery": "benchmarks.delivery",
    "audiences": "benchmarks.audiences",
    "catalog": "benchmarks.catalog",
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(__doc__.strip())
        print("\navailable:", ", ".join(BENCHMARKS))
        return 0
    if args and args[0] == "--list":
        print("\n".join(BENCHMARKS))
        return 0
    if args and not args[0].startswith("-"):
        name, rest = args[0], args[1:]
        if name not in BENCHMARKS:
            print(f"unknown benchmark {name!r}; available: {', '.join(BENCHMARKS)}", file=sys.stderr)
            return 2
        return importlib.import_module(BENCHMARKS[name]).main(rest)
    status = 0
    for name, module in BENCHMARKS.items():
        print(f"== {name} ==")
        status |= importlib.import_module(module).main(args)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
