"""findings.md: the verdict rule on hand-made numbers, rows selected from a store by config keys and class names,
byte-identical pages, and every declared claim selecting rows the bench runs."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from harness.bench import combinations
from harness.leaderboard import regenerate_leaderboards
from harness.claims import ABOVE, BELOW, Claim, RowSelector
from harness.config import compose_config, register_configs
from harness.findings import (INCONCLUSIVE, NOT_MEASURED, NOT_REPRODUCED, ONE_SEED, REPRODUCED, SEVERAL_SETTINGS,
                              compare, judge_claims, render_findings)
from harness.metrics.directions import direction
from harness.registry import default_registry
from harness.specs import Kind
from harness.store import Metric, RunRecord, Store

JOINT = {"encoder": {"name": "pointnet"}, "protocol": {"tasks": ["occupancy", "classification"], "lr": 0.001}}
FROZEN = {"encoder": {"name": "pointnet"}, "protocol": {"pretrain_tasks": ["occupancy"], "task": "classification"}}
JOINT_ROW = RowSelector("multitask", "top1", {"encoder.name": "pointnet", "protocol.tasks": ("occupancy",
                                                                                             "classification")})
FROZEN_ROW = RowSelector("holdout", "top1", {"encoder.name": "pointnet", "protocol.pretrain_tasks": ["occupancy"],
                                             "protocol.task": "classification"})
JOINT_BEATS_FROZEN = Claim("joint-beats-frozen", "joint training classifies better", "paper Table 2", JOINT_ROW,
                           ABOVE, FROZEN_ROW, published_a=0.92, published_b=0.80)


def test_reproduced_not_reproduced_and_inconclusive_from_the_confidence_interval() -> None:
    a, b = {1: 0.90, 2: 0.92, 3: 0.94}, {4: 0.80, 5: 0.82, 6: 0.84}
    # means 0.92 and 0.82, sample stds 0.02: SE = sqrt(0.02²/3 + 0.02²/3) = 0.016330, Welch df = 4,
    # t(0.975, 4) = 2.7764: Δ = 0.10 ± 0.045339, i.e. [0.05466, 0.14534]
    inside = compare(a, b, ABOVE)
    assert (inside.verdict, inside.paired) == (REPRODUCED, False)
    assert inside.difference == pytest.approx(0.10)
    assert inside.half_width == pytest.approx(0.045339, abs=1e-6)
    assert compare(a, b, BELOW).verdict == NOT_REPRODUCED  # wholly above 0
    assert compare(a, b, (-0.05, 0.05)).verdict == NOT_REPRODUCED  # wholly above 0.05
    assert compare(a, b, (-0.1, 0.1)).verdict == INCONCLUSIVE  # straddles 0.1
    assert compare(a, b, (0.0, 0.14534 + 1e-4)).verdict == REPRODUCED
    # A's spread grows to std 0.1: SE = 0.058878, Welch df = 2.16, half width ≈ 0.24: straddles 0
    assert compare({1: 0.82, 2: 0.92, 3: 1.02}, b, ABOVE).verdict == INCONCLUSIVE


def test_one_seed_leaves_the_spread_unknown() -> None:
    result = compare({1: 0.9}, {2: 0.8, 3: 0.7}, ABOVE)
    assert (result.verdict, result.half_width) == (ONE_SEED, None)
    assert result.difference == pytest.approx(0.15)
    assert compare({1: 0.9}, None, ABOVE).verdict == ONE_SEED
    assert compare({1: 0.9}, {1: 0.8}, ABOVE).verdict == ONE_SEED  # one pair


def test_rows_read_from_the_same_runs_are_paired() -> None:
    a, b = {1: 0.90, 2: 0.80, 3: 0.85}, {1: 0.89, 2: 0.795, 3: 0.84}
    # per-run differences 0.01, 0.005, 0.01: mean 0.008333, std 0.0028868, SE 0.0016667, t(0.975, 2) = 4.3027:
    # half width 0.0071711, the interval [0.00116, 0.01550] lies above 0
    paired = compare(a, b, ABOVE)
    assert (paired.verdict, paired.paired) == (REPRODUCED, True)
    assert paired.difference == pytest.approx(0.008333, abs=1e-6)
    assert paired.half_width == pytest.approx(0.0071711, abs=1e-6)
    # the same values from independent runs: the runs' own spread (std 0.05) swamps the difference
    unpaired = compare(a, {run + 3: value for run, value in b.items()}, ABOVE)
    assert (unpaired.verdict, unpaired.paired) == (INCONCLUSIVE, False)


def test_a_row_alone_and_identical_values() -> None:
    # mean -0.01, std 0.001, SE 0.00057735, t(0.975, 2) = 4.3027: [-0.012484, -0.007516] inside [-0.02, 0]
    alone = compare({1: -0.009, 2: -0.011, 3: -0.010}, None, (-0.02, 0.0))
    assert alone.verdict == REPRODUCED and alone.half_width == pytest.approx(0.0024841, abs=1e-6)
    same = compare({1: 0.5, 2: 0.5}, {3: 0.4, 4: 0.4}, ABOVE)  # no spread at all: the difference is exact
    assert (same.verdict, same.half_width) == (REPRODUCED, 0.0)


def test_claims_validate_their_interval_and_rows() -> None:
    with pytest.raises(ValueError, match="lo <= hi"):
        Claim("x", "s", "t", JOINT_ROW, (1.0, 0.0))
    with pytest.raises(ValueError, match="needs a row B"):
        Claim("x", "s", "t", JOINT_ROW, ABOVE, published_b=0.5)
    with pytest.raises(ValueError, match="one dataset"):
        Claim("x", "s", "t", RowSelector("p", "m", dataset="d1"), ABOVE, RowSelector("p", "m", dataset="d2"))
    assert JOINT_BEATS_FROZEN.published_difference() == pytest.approx(0.12)


def test_selectors_match_dotted_config_keys_with_whole_lists() -> None:
    assert JOINT_ROW.matches(JOINT)  # the declared tuple equals the stored list
    assert not JOINT_ROW.matches({**JOINT, "protocol": {"tasks": ["occupancy", "classification", "segmentation"]}})
    assert not JOINT_ROW.matches({"encoder": {"name": "pointnet"}})  # a missing key never matches
    assert not JOINT_ROW.matches({"encoder": None, "protocol": JOINT["protocol"]})


class Runs:
    """Runs written into a store by hand: one identity per (protocol, config, dataset, profile, seed)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, protocol: str, config: dict[str, Any], seed: int, metrics: list[Metric], dataset: str = "shapes",
            profile: str = "quick", status: str = "succeeded", force: bool = False) -> None:
        variant = json.dumps([protocol, config, dataset, profile], sort_keys=True)
        record = RunRecord(identity=f"{variant}/{seed}", variant=variant, protocol=protocol, dataset=dataset,
                           method=f"{protocol} {config['encoder']['name']}", components={}, profile=profile,
                           dataset_fingerprint="fp", config={**config, "seed": seed}, seed=seed,
                           environment={}, run_dir=None)
        run_id = self.store.start(record, force=force)
        if status == "succeeded":
            self.store.succeed(run_id, metrics, wall_time_s=1.0)
        else:
            self.store.fail(run_id, "RuntimeError: diverged")


def top1(value: float, class_name: str | None = None) -> list[Metric]:
    return [Metric("test", "top1", value, True, class_name), Metric("val", "top1", 0.0, True, class_name)]


def fill(store: Store, reverse: bool = False) -> Store:
    """Three seeds of the joint and the frozen rows on the quick profile (one rerun replacing an outlier, a failed
    run, a setting neither row selects), and a joint run alone on the smoke profile."""
    runs = Runs(store)
    steps = [
        lambda: runs.add("multitask", JOINT, 0, top1(0.90)),
        lambda: runs.add("multitask", JOINT, 1, top1(0.92)),
        lambda: runs.add("multitask", JOINT, 2, top1(0.10)),
        lambda: runs.add("multitask", JOINT, 2, top1(0.94), force=True),  # replaces the one above
        lambda: runs.add("holdout", FROZEN, 0, top1(0.80)),
        lambda: runs.add("holdout", FROZEN, 1, top1(0.82)),
        lambda: runs.add("holdout", FROZEN, 2, top1(0.84)),
        lambda: runs.add("holdout", FROZEN, 3, top1(0.0), status="failed"),
        lambda: runs.add("multitask", {**JOINT, "protocol": {"tasks": ["occupancy"]}}, 0, top1(0.3)),
        lambda: runs.add("multitask", JOINT, 0, top1(0.5), profile="smoke"),
    ]
    order = [8, 9, 4, 5, 6, 7, 0, 1, 2, 3] if reverse else range(len(steps))
    for index in order:
        steps[index]()
    return store


def test_rows_are_selected_by_config_per_dataset_and_profile(tmp_path: Path) -> None:
    store = fill(Store(f"sqlite:///{tmp_path / 'r.sqlite'}"))
    quick, smoke = judge_claims(store, {"multitask": [JOINT_BEATS_FROZEN]})
    assert (quick.dataset, quick.profile, smoke.profile) == ("shapes", "quick", "smoke")
    assert sorted(quick.a.values()) == [0.90, 0.92, 0.94] and sorted(quick.b.values()) == [0.80, 0.82, 0.84]
    assert quick.verdict == REPRODUCED and quick.comparison.half_width == pytest.approx(0.045339, abs=1e-6)
    assert (smoke.verdict, smoke.detail) == (NOT_MEASURED, "no succeeded runs match B")


def test_class_names_select_a_breakdown_paired_within_runs(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'q.sqlite'}")
    config = {"encoder": {"name": "voxnet"}, "compressor": {"name": "dsconv"}}
    for seed, (eight, float_) in enumerate([(0.90, 0.89), (0.80, 0.795), (0.85, 0.84)]):
        Runs(store).add("quantisation", config, seed, top1(eight, "8") + top1(float_, "32-bit Floating Point"))
    rows = {name: RowSelector("quantisation", "top1", {"compressor.name": "dsconv"}, class_name=name)
            for name in ("8", "32-bit Floating Point")}
    claims = [Claim("eight-bits", "s", "t", rows["8"], ABOVE, rows["32-bit Floating Point"]),
              Claim("overall", "s", "t", RowSelector("quantisation", "top1"), ABOVE)]
    eight, overall = judge_claims(store, {"quantisation": claims})
    assert (eight.verdict, eight.comparison.paired) == (REPRODUCED, True)  # as the paired test's numbers
    assert (overall.verdict, overall.detail) == (NOT_MEASURED, "A's runs record no top1 on split test")


def test_several_settings_matching_one_row_are_named_not_averaged(tmp_path: Path) -> None:
    store = fill(Store(f"sqlite:///{tmp_path / 'r.sqlite'}"))
    Runs(store).add("multitask", {**JOINT, "protocol": {**JOINT["protocol"], "lr": 0.01}}, 0, top1(0.6))
    [quick, _] = judge_claims(store, {"multitask": [JOINT_BEATS_FROZEN]})
    assert quick.verdict == SEVERAL_SETTINGS and quick.comparison is None
    assert quick.detail.startswith("2 match A: multitask pointnet (") and quick.detail.count("multitask pointnet") == 2


def test_nothing_measured_is_said_once(tmp_path: Path) -> None:
    [finding] = judge_claims(Store(f"sqlite:///{tmp_path / 'e.sqlite'}"), {"multitask": [JOINT_BEATS_FROZEN]})
    assert (finding.dataset, finding.verdict, finding.detail) == ("", NOT_MEASURED, "no succeeded runs match A or B")


def table_row(text: str, first: str) -> list[str]:
    row = next(line for line in text.splitlines() if line.startswith(f"| {first} "))
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_page_sets_published_beside_measured(tmp_path: Path) -> None:
    page = render_findings(judge_claims(fill(Store(f"sqlite:///{tmp_path / 'r.sqlite'}")),
                                        {"multitask": [JOINT_BEATS_FROZEN]}))
    assert "Do not edit by hand" in page and "## multitask" in page
    assert ("- **joint-beats-frozen**: joint training classifies better. Source: paper Table 2. A = multitask "
            '(encoder.name=pointnet, protocol.tasks=["occupancy", "classification"]): top1; B = holdout') in page
    header = table_row(page, "claim")
    row = dict(zip(header, table_row(page, "joint-beats-frozen")))
    assert row == {"claim": "joint-beats-frozen", "dataset": "shapes", "profile": "quick", "published A": "0.92",
                   "published B": "0.8", "published Δ": "0.12", "measured A": "0.9200 ± 0.02000 (n=3)",
                   "measured B": "0.8200 ± 0.02000 (n=3)", "measured Δ [95% CI]": "0.1000 [0.05466, 0.1453]",
                   "claimed Δ": "≥ 0", "verdict": REPRODUCED}
    assert "Verdicts: not measured 1, reproduced 1" in page


def test_regeneration_is_byte_identical(tmp_path: Path) -> None:
    claims = {"multitask": [JOINT_BEATS_FROZEN]}
    first = render_findings(judge_claims(fill(Store(f"sqlite:///{tmp_path / 'a.sqlite'}")), claims))
    shuffled = render_findings(judge_claims(fill(Store(f"sqlite:///{tmp_path / 'b.sqlite'}"), reverse=True), claims))
    assert first == shuffled


def test_leaderboard_regeneration_writes_every_declared_claim(tmp_path: Path) -> None:
    registry = default_registry()
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    Store(url).close()  # an empty store (regeneration opens it read-only: it must exist)
    paths = regenerate_leaderboards(registry, url, tmp_path / "one")
    regenerate_leaderboards(registry, url, tmp_path / "two")
    assert paths[-1] == tmp_path / "one" / "findings.md"
    page = paths[-1].read_bytes()
    assert page == (tmp_path / "two" / "findings.md").read_bytes()
    for protocol in registry.specs(Kind.PROTOCOL):
        for claim in protocol.capabilities.claims:
            assert table_row(page.decode(), claim.id)[-1] == f"{NOT_MEASURED}: no succeeded runs match " + (
                "A or B" if claim.b else "A")


def declared_claims() -> list[tuple[str, Claim]]:
    return [(protocol.name, claim) for protocol in default_registry().specs(Kind.PROTOCOL)
            for claim in protocol.capabilities.claims]


def test_declared_claims_are_unique_and_agree_with_their_published_numbers() -> None:
    claims = declared_claims()
    assert len(claims) >= 15
    assert len({claim.id for _, claim in claims}) == len(claims)
    for _, claim in claims:
        published = claim.published_difference()
        assert published is not None, claim.id
        lo, hi = claim.interval
        assert lo <= published <= hi, claim.id


def test_every_declared_claim_selects_exactly_one_bench_setting_per_dataset() -> None:
    """Each row names a registered protocol and a metric with a direction, and among the combinations ``harness
    bench`` runs, matches at least one and never two on one dataset (the page would report several settings)."""
    registry = default_registry()
    register_configs(registry)
    protocols = set(registry.names(Kind.PROTOCOL))
    rows = [row for _, claim in declared_claims() for row in (claim.a, claim.b) if row is not None]
    resolved: dict[str, tuple[str, dict[str, Any]]] = {}
    for combination in combinations(registry):
        if combination.protocol in {row.protocol for row in rows}:
            config = OmegaConf.to_container(compose_config(combination.overrides() + ["profile=quick"]), resolve=True)
            resolved[str(combination)] = (combination.dataset, config)
    for row in rows:
        assert row.protocol in protocols, row
        assert direction(row.metric) is not None, row
        matched = Counter(dataset for dataset, config in resolved.values()
                          if config["protocol"]["name"] == row.protocol and row.matches(config)
                          and row.dataset in (None, dataset))
        assert matched and set(matched.values()) == {1}, (row.describe(), matched)

