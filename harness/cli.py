"""The ``harness`` command: run, bench, list, plugins, leaderboard.

``harness run`` hands its arguments to Hydra (overrides, ``-m`` sweeps, ``--cfg job``), with
``--force`` as a shorthand for ``force=true``. Everything else is plain argparse.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from tabulate import tabulate

from harness.specs import Kind

log = logging.getLogger("harness")

USAGE = """usage: harness <command> [args]

commands:
  run [overrides...] [-m] [--force]   one run (or a Hydra sweep with -m), e.g.
                                      harness run protocol=reconstruction dataset=synthetic_shapes profile=smoke
  bench [--profile P] [--seeds N]     the main job: every protocol x compatible combination on the
                                      synthetic datasets, then where the time went (logged, and in
                                      <harness home>/bench_timing.json) and the leaderboards regenerated
  list                                registered components and what each protocol accepts
  plugins                             loaded plugins, versions and failures
  leaderboard [--store URL] [--out D] regenerate leaderboard markdown from the results store
"""


def _registry():
    from harness.registry import default_registry

    return default_registry()


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(name)s] %(message)s", datefmt="%H:%M:%S")


# Capabilities that say how a component runs together with others; the rest (bench plans, published
# tables, leaderboard layout) are left out of the listing.
LISTED_CAPABILITIES = ("consumes", "produces", "task", "modalities", "targets", "synthetic", "layer_types",
                       "roles", "tasks", "encodings")


def _capability_text(spec) -> str:
    caps = vars(spec.capabilities)
    return ", ".join(f"{k}={'/'.join(caps[k]) if isinstance(caps[k], tuple) else caps[k]}"
                     for k in LISTED_CAPABILITIES if caps.get(k) not in ((), None, False))


def cmd_list(argv: Sequence[str]) -> int:
    from harness.compat import mismatches

    registry = _registry()
    for kind in Kind:
        rows = [(s.name, s.plugin, s.version, _capability_text(s), s.description) for s in registry.specs(kind)]
        print(f"\n{kind.value}s ({len(rows)})")
        if rows:
            print(tabulate(rows, headers=["name", "plugin", "version", "capabilities", "description"]))
    datasets = registry.specs(Kind.DATASET)
    for protocol in registry.specs(Kind.PROTOCOL):
        needs_decoder = "decoder" in protocol.capabilities.roles
        pairs = [(e, d) for e in registry.specs(Kind.ENCODER)
                 for d in (registry.specs(Kind.DECODER) if needs_decoder else [None])]
        rows = []
        for encoder, decoder in pairs:
            label = encoder.name + (f" + {decoder.name}" if decoder else "")
            cells = ["ok" if not mismatches(protocol, {"dataset": ds, "encoder": encoder, "decoder": decoder})
                     else "-" for ds in datasets]
            rows.append([label, *cells])
        print(f"\nprotocol {protocol.name}: which combinations it accepts (ok) on which dataset")
        print(tabulate(rows, headers=["encoder + decoder", *[d.name for d in datasets]]))
    return 0


def cmd_plugins(argv: Sequence[str]) -> int:
    registry = _registry()
    rows = [(p.name, p.module, p.distribution, p.version, p.status,
             ", ".join(f"{k.value}:{n}" for k, n in p.components), p.error) for p in registry.plugins]
    print(tabulate(rows, headers=["plugin", "module", "distribution", "version", "status", "components", "error"]))
    failed = [p for p in registry.plugins if p.status == "failed"]
    if failed:
        print(f"\n{len(failed)} plugin(s) failed to load; every other component works.")
    return 0


def cmd_leaderboard(argv: Sequence[str]) -> int:
    from harness.bench import regenerate_leaderboards
    from harness.config import default_store_url

    parser = argparse.ArgumentParser(prog="harness leaderboard")
    parser.add_argument("--store", default=default_store_url(), help="results store URL (SQLAlchemy)")
    parser.add_argument("--out", default="leaderboards", help="folder of the markdown files")
    args = parser.parse_args(argv)
    for path in regenerate_leaderboards(_registry(), args.store, Path(args.out)):
        print(path)
    return 0


def cmd_bench(argv: Sequence[str]) -> int:
    from harness.bench import regenerate_leaderboards, report_timing, run_bench
    from harness.config import PROFILES, default_store_url, harness_home

    parser = argparse.ArgumentParser(prog="harness bench")
    parser.add_argument("--profile", default="quick", choices=PROFILES)
    parser.add_argument("--seeds", type=int, default=1, help="seeds per combination (2+ gives mean ± std)")
    parser.add_argument("--force", action="store_true", help="rerun combinations that already succeeded")
    parser.add_argument("--protocol", action="append", default=[], help="only these protocols")
    parser.add_argument("--out", default="leaderboards", help="folder of the markdown files")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="runs at a time, in worker processes sharing the torch threads (default: 2, or 1 on "
                             "one core; on 2 cores 1.4x faster than one run at a time)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run, e.g. device=auto")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    setup_logging()
    registry = _registry()
    results = run_bench(registry, args.profile, args.seeds, args.force, args.protocol, args.overrides, args.jobs)
    store_url = next((o.split("=", 1)[1] for o in args.overrides if o.startswith("store.url=")), default_store_url())
    report_timing(results, store_url, Path(harness_home()) / "bench_timing.json")
    paths = regenerate_leaderboards(registry, store_url, Path(args.out))
    rows = [(str(c), outcome.status if outcome else "failed", error[:120]) for c, outcome, error in results]
    print(tabulate(rows, headers=["combination", "status", "error"]))
    print("leaderboards: " + ", ".join(str(p) for p in paths))
    return 1 if any(outcome is None for _, outcome, _ in results) else 0


def cmd_run(argv: Sequence[str]) -> int:
    import hydra

    from harness.compat import IncompatibleError
    from harness.config import ROOT_CONFIG, register_configs
    from harness.registry import UnknownComponentError
    from harness.runner import RunFailed, execute

    registry = _registry()
    register_configs(registry)
    failures: list[str] = []

    @hydra.main(version_base="1.3", config_path=None, config_name=ROOT_CONFIG)
    def task(cfg) -> None:
        try:
            outcome = execute(cfg, registry)
        except (UnknownComponentError, IncompatibleError, RunFailed, OSError, ValueError) as exc:
            failures.append(str(exc))
            print(f"error: {exc}", file=sys.stderr)
            return
        summary = {m.name: round(m.value, 4) for m in outcome.metrics if m.split == "test" and m.class_name is None}
        print(f"{outcome.status}: identity {outcome.identity[:12]} run {outcome.run_id} {summary}")

    sys.argv = ["harness run"] + ["force=true" if arg == "--force" else arg for arg in argv]
    task()
    return 1 if failures else 0


COMMANDS = {"run": cmd_run, "bench": cmd_bench, "list": cmd_list, "plugins": cmd_plugins,
            "leaderboard": cmd_leaderboard}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(USAGE, file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
