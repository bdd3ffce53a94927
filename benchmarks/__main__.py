"""`python -m benchmarks`: runs every benchmarks/bench_*.py module's main() in name order."""
from __future__ import annotations

import importlib
import pkgutil
import sys

import benchmarks


def bench_modules() -> list[str]:
    """Names of the bench_* modules of this package, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmarks named on the command line (e.g. `ndarray`), or all of them."""
    wanted = argv if argv is not None else sys.argv[1:]
    names = bench_modules()
    if wanted:
        unknown = [w for w in wanted if f"bench_{w}" not in names and w not in names]
        if unknown:
            print(f"unknown benchmark(s) {unknown}; available: {names}", file=sys.stderr)
            return 2
        names = [n for n in names if n in wanted or n[len("bench_"):] in wanted]
    for name in names:
        print(f"=== {name} ===", flush=True)
        importlib.import_module(f"benchmarks.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
