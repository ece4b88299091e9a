"""`python -m bench` (= `make bench`): the proxy, site, soak, rollups and workers benchmarks, one after another.

  python -m bench                 # all, figures into BENCHMARKS.md
  python -m bench proxy [--quick] [--no-write] [--litellm VENV]   # one, with its own options
  python -m bench site [...]      # bench/site_bench.py, when present
  python -m bench soak [--quick] [--no-write]   # bench/soak_bench.py
  python -m bench rollups [--quick] [--no-write]   # bench/rollups_bench.py: trigger, merge, Datasette
  python -m bench workers [--quick] [--no-write]   # bench/workers_bench.py: 1 vs 2 workers
  python -m bench redis [--quick] [--no-write]     # bench/redis_bench.py: added latency with Redis
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable

BENCHES = ("proxy", "site", "soak", "rollups", "workers", "redis")


def _entry(name: str) -> Callable[..., int | None] | None:
    module = f"bench.{name}_bench"
    if importlib.util.find_spec(module) is None:
        return None
    return importlib.import_module(module).main


def _call(name: str, main: Callable[..., int | None], argv: list[str]) -> int:
    print(f"== bench {name} ==", flush=True)
    if inspect.signature(main).parameters:
        return int(main(argv) or 0)
    # A main() that reads sys.argv itself must not see our own arguments.
    saved = sys.argv
    sys.argv = [f"python -m bench {name}", *argv]
    try:
        return int(main() or 0)
    finally:
        sys.argv = saved


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if args and args[0] in BENCHES:
        name, rest = args[0], args[1:]
        entry = _entry(name)
        if entry is None:
            print(f"bench: bench/{name}_bench.py does not exist yet", file=sys.stderr)
            return 2
        return _call(name, entry, rest)
    if args:
        print(f"bench: unknown benchmark {args[0]!r}; choose from {', '.join(BENCHES)}",
              file=sys.stderr)
        return 2
    status = 0
    for name in BENCHES:
        entry = _entry(name)
        if entry is None:
            print(f"== bench {name}: bench/{name}_bench.py not present, skipped ==")
            continue
        status = max(status, _call(name, entry, []))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
