"""The ``harness`` command: run, bench, list, plugins, leaderboard.

``harness run`` hands its arguments to Hydra (overrides, ``-m`` sweeps, ``--cfg job``), with
``--force`` as a shorthand for ``force=true``. Everything else is plain argparse.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Sequence

from tabulate import tabulate

from harness.progress import setup_logging
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
  leaderboard [--store URL] [--out D] regenerate leaderboard markdown from the results store (read only;
                                      a page that would lose measured rows is kept unless --allow-shrink)
  store check|recover [--store URL]   verify the results store, or copy its readable rows --to a new one
"""


def _registry():
    from harness.registry import default_registry

    return default_registry()


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


def _default_store_url(registry) -> str:
    from harness.config import locations

    return locations(registry).store_url


def cmd_leaderboard(argv: Sequence[str]) -> int:
    registry = _registry()
    parser = argparse.ArgumentParser(prog="harness leaderboard")
    parser.add_argument("--store", help="results store URL (SQLAlchemy), read only; default: the harness's own store")
    parser.add_argument("--out", default="leaderboards", help="folder of the markdown files")
    parser.add_argument("--allow-shrink", action="store_true",
                        help="overwrite pages even when the store has fewer measured rows than they show")
    args = parser.parse_args(argv)
    return _write_leaderboards(registry, args.store or _default_store_url(registry), Path(args.out), args.allow_shrink)


def _write_leaderboards(registry, store_url: str, out: Path, allow_shrink: bool) -> int:
    """Regenerate the pages, printing each written; 1 (with the reason on stderr) when some were kept."""
    from harness.leaderboard import PagesWouldShrink, regenerate_leaderboards

    try:
        paths = regenerate_leaderboards(registry, store_url, out, allow_shrink)
    except PagesWouldShrink as exc:
        paths = exc.written
        print(f"error: {exc}", file=sys.stderr)
    for path in paths:
        print(path)
    return 0 if len(paths) == len(list(registry.specs(Kind.PROTOCOL))) + 1 else 1


def cmd_store(argv: Sequence[str]) -> int:
    from harness.store import check, recover

    parser = argparse.ArgumentParser(prog="harness store")
    parser.add_argument("action", choices=("check", "recover"),
                        help="check: open read-only and verify; recover: copy every readable row into --to")
    parser.add_argument("--store", help="results store URL (SQLAlchemy; default: the harness's own store)")
    parser.add_argument("--to", help="recover: the new store's URL (must hold no runs)")
    args = parser.parse_args(argv)
    args.store = args.store or _default_store_url(_registry())
    if args.action == "check":
        print(check(args.store))
        return 0
    if not args.to:
        parser.error("recover needs --to <new store URL>")
    for table, (copied, left_out) in recover(args.store, args.to).items():
        print(f"{table}: {copied} rows copied" + (f", {left_out} left out (their run was lost)" if left_out else ""))
    print(f"recovered into {args.to}; {check(args.to)}")
    return 0


def cmd_bench(argv: Sequence[str]) -> int:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from harness.bench import NOT_STARTED, BenchStopped, report_timing, run_bench
    from harness.config import PROFILES, locations
    from harness.store import StoreError

    parser = argparse.ArgumentParser(prog="harness bench")
    parser.add_argument("--profile", default="quick", choices=PROFILES)
    parser.add_argument("--seeds", type=int, default=1, help="seeds per combination (2+ gives mean ± std)")
    parser.add_argument("--force", action="store_true", help="rerun combinations that already succeeded")
    parser.add_argument("--protocol", action="append", default=[], help="only these protocols")
    parser.add_argument("--out", default="leaderboards", help="folder of the markdown files")
    parser.add_argument("--allow-shrink", action="store_true",
                        help="overwrite leaderboard pages even when they would lose measured rows")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="runs at a time, in worker processes sharing the torch threads (default: 2, or 1 on "
                             "one core; on 2 cores 1.4x faster than one run at a time)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run, e.g. device=auto")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    setup_logging()
    registry = _registry()
    try:  # where the runs record, resolved once from the composed config; a bad override is refused here
        where = locations(registry, [f"profile={args.profile}", *args.overrides])
    except (HydraException, OmegaConfBaseException) as exc:
        print(f"error: harness bench {' '.join(args.overrides)}: {exc}", file=sys.stderr)
        return 2
    stopped: BenchStopped | None = None
    try:
        results = run_bench(registry, args.profile, args.seeds, args.force, args.protocol, args.overrides, args.jobs)
    except BenchStopped as exc:
        stopped, results = exc, exc.results
    rows = [(str(c), outcome.status if outcome else "failed", error[:120]) for c, outcome, error in results]
    print(tabulate(rows, headers=["combination", "status", "error"]))
    if any(outcome is None or outcome.status != NOT_STARTED for _, outcome, _ in results):
        try:
            report_timing(results, where.store_url, where.home / "bench_timing.json")
            _write_leaderboards(registry, where.store_url, Path(args.out), args.allow_shrink)
        except StoreError as exc:  # reported, but a stopped bench still exits with its signal's code
            print(f"error: {exc}", file=sys.stderr)
            if stopped is None:
                return 1
    if stopped is not None:
        print(f"{stopped}: the interrupted runs resume on the next `harness bench`", file=sys.stderr)
        return stopped.exit_code
    return 1 if any(outcome is None for _, outcome, _ in results) else 0


def cmd_run(argv: Sequence[str]) -> int:
    import hydra

    from harness.compat import IncompatibleError
    from harness.config import ROOT_CONFIG, register_configs
    from harness.registry import UnknownComponentError
    from harness.runner import Interrupted, RunFailed, execute, interrupts_raised
    from harness.store import StoreError
    from harness.training import DeviceUnavailable

    registry = _registry()
    register_configs(registry)
    failures: list[str] = []

    @hydra.main(version_base="1.3", config_path=None, config_name=ROOT_CONFIG)
    def task(cfg) -> None:
        try:
            outcome = execute(cfg, registry)
        except (UnknownComponentError, IncompatibleError, RunFailed, StoreError, DeviceUnavailable, OSError,
                ValueError) as exc:
            failures.append(str(exc))
            _report_error(exc, Path(cfg.paths.home))
            return
        summary = {m.name: round(m.value, 4) for m in outcome.metrics if m.split == "test" and m.class_name is None}
        print(f"{outcome.status}: identity {outcome.identity[:12]} run {outcome.run_id} {summary}")

    home = _run_home(registry, argv)
    try:  # Hydra makes its output folder there before the run starts: say what is wrong in one line
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: the harness home {home} (HARNESS_HOME or paths.home) is not a usable folder: {exc}",
              file=sys.stderr)
        return 1
    sys.argv = ["harness run"] + ["force=true" if arg == "--force" else arg for arg in argv]
    try:
        with interrupts_raised():
            task()
    except Interrupted as exc:
        print(f"interrupted by {signal.Signals(exc.signum).name}: a started run is recorded as interrupted and "
              f"resumes when rerun", file=sys.stderr)
        return exc.exit_code
    return 1 if failures else 0


def _run_home(registry, argv: Sequence[str]) -> Path:
    """The harness home of ``harness run argv``, from the config its single-valued overrides compose (a sweep's
    homes are Hydra's to make); the default home when they do not compose, which Hydra then reports."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from harness.config import locations

    try:
        parsed = OverridesParser.create().parse_overrides([a for a in argv if "=" in a and not a.startswith("-")])
        single = [o.input_line for o in parsed if not o.is_sweep_override() and not o.key_or_group.startswith("hydra")]
        return locations(registry, single).home
    except (HydraException, OmegaConfBaseException):
        return locations(registry).home


ERROR_LOG = "errors.log"  # under the harness home: the tracebacks behind the one-line errors


def _report_error(exc: BaseException, home: Path) -> None:
    """One line on stderr; the traceback appended to ``<home>/errors.log`` when that can be written."""
    import traceback

    where = ""
    try:
        home.mkdir(parents=True, exist_ok=True)
        with open(home / ERROR_LOG, "a", encoding="utf-8") as log_file:
            log_file.write("".join(traceback.format_exception(exc)) + "\n")
        where = f" (traceback in {home / ERROR_LOG})"
    except OSError:
        pass
    print(f"error: {exc}{where}", file=sys.stderr)


COMMANDS = {"run": cmd_run, "bench": cmd_bench, "list": cmd_list, "plugins": cmd_plugins,
            "leaderboard": cmd_leaderboard, "store": cmd_store}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(USAGE, file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    from harness.store import StoreError

    try:
        return COMMANDS[argv[0]](argv[1:])
    except StoreError as exc:  # a store that cannot be opened, read or written: one line, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
