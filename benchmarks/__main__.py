"""Run every benchmark module: ``python -m benchmarks [--only NAME ...] [ARGS...]``.

Modules are discovered, not listed, so a new ``benchmarks/bench_<name>.py`` with a ``main()``
is picked up without touching this file. ``main(argv)`` receives the remaining arguments
(e.g. ``--quick``) when it accepts a parameter; ``main()`` is called bare otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import sys
import time
from pathlib import Path


def discover() -> list[str]:
    """Names of the ``bench_*`` modules next to this file, sorted."""
    here = Path(__file__).resolve().parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", action="append", default=[],
                        help="run only this benchmark (e.g. ingest or bench_ingest); repeatable")
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    wanted = {n if n.startswith("bench_") else f"bench_{n}" for n in args.only}
    failures = 0
    for name in discover():
        if wanted and name not in wanted:
            continue
        module = importlib.import_module(f"benchmarks.{name}")
        entry = getattr(module, "main", None)
        if entry is None:
            print(f"== {name}: no main(), skipped", flush=True)
            continue
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        try:
            entry(rest) if inspect.signature(entry).parameters else entry()
        except Exception as e:  # noqa: BLE001 - one broken benchmark must not hide the others
            failures += 1
            print(f"== {name} FAILED: {type(e).__name__}: {e}", flush=True)
        except SystemExit as e:  # argparse rejecting an argument meant for another benchmark
            if e.code not in (0, None):
                failures += 1
                print(f"== {name} exited with {e.code}", flush=True)
        print(f"== {name}: {time.perf_counter() - start:.1f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
