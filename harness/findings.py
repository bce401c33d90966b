"""``leaderboards/findings.md``: every claim the protocols declare (:mod:`harness.claims`), the numbers its paper
printed beside the measured ones, and a verdict.

Selection: a row's runs are the current results (``succeeded``: the latest succeeded run per identity, as on the
leaderboards) of its protocol whose stored resolved config holds the selector's values; each gives one value of
the metric (split, class name). A claim is judged per (dataset, profile), never across them: one value per seed,
mean and sample standard deviation (ddof=1). Runs of several settings (variants) matching one row are reported,
not averaged or picked from.

Verdict: the difference A − B (or A alone) with its 95% confidence interval, Student's t: paired over runs when
A and B are read from the same runs (two configurations of one quantisation run share its model, so their
difference varies far less than either), Welch's otherwise (independent trainings, unequal variances). Reproduced
when the whole interval lies inside the claim's [lo, hi]; not reproduced when it lies wholly outside; inconclusive
when it straddles a bound, or when a row has a single seed (its spread is unknown). The t interval rather than
±2 standard errors because the bench runs few seeds: with 3 a row (2 to 4 degrees of freedom) ±2 SE covers only
82-88%, and "reproduced" would be said too easily.

Deterministic: claims in declared order under protocols sorted by name, (dataset, profile) sorted, means and
deviations computed exactly (``statistics``), numbers printed as on the leaderboards.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
from scipy import stats

from harness.claims import Claim, RowSelector
from harness.leaderboard import GENERATED_NOTE, _markdown, _mean_std, _number, measured_line
from harness.store import Store

FINDINGS_PAGE = "findings.md"
CONFIDENCE = 0.95
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
ONE_SEED = "inconclusive (one seed)"
NOT_MEASURED = "not measured"
SEVERAL_SETTINGS = "several settings"
HOW_TO_READ = f"""\
Each protocol declares the comparisons its papers make (`ProtocolCaps.claims`). A claim bounds Δ = A − B (or A
alone when it has no row B) by an interval [lo, hi] in the measured metric's units: "A beats B" on a
higher-is-better metric is Δ ≥ 0, "costs about a point" of top-1 is Δ in [-0.02, 0]. Published numbers are the
papers' (on their original real datasets, converted to the measured units); measured ones are mean ± sample std
(ddof=1) over seeds, one value per seed from the latest succeeded run per identity, judged per dataset and
profile.

Verdict, from the {CONFIDENCE:.0%} confidence interval of the measured difference (Student's t; paired over runs when
A and B come from the same runs, Welch's otherwise): **{REPRODUCED}** when the whole interval lies inside the
claim's, **{NOT_REPRODUCED}** when it lies wholly outside, **{INCONCLUSIVE}** when it straddles a bound or a row
has one seed (its spread is unknown: run `harness bench --seeds 3`). **{NOT_MEASURED}** names the missing row;
**{SEVERAL_SETTINGS}** lists the settings that match one row (narrow its selector rather than average them).
Never tune toward a verdict."""


@dataclass(frozen=True)
class Comparison:
    """The measured difference and what it says about a claim's interval."""

    difference: float  # mean A − mean B (paired: the mean of the per-run differences), or mean A
    half_width: float | None  # of its confidence interval; None when a row has one seed
    paired: bool
    verdict: str


def compare(a: Mapping[int, float], b: Mapping[int, float] | None, interval: tuple[float, float]) -> Comparison:
    """Judge A − B (or A) against ``interval``; ``a``/``b`` map run ids to values, and rows read from the same runs
    are paired run by run."""
    paired = b is not None and set(a) == set(b)
    if paired:
        difference, error, freedom = _one_sample([a[run] - b[run] for run in sorted(a)])
    elif b is None:
        difference, error, freedom = _one_sample(list(a.values()))
    else:
        difference, error, freedom = _welch(list(a.values()), list(b.values()))
    if error is None:
        return Comparison(difference, None, paired, ONE_SEED)
    half = 0.0 if error == 0 else float(stats.t.ppf((1 + CONFIDENCE) / 2, freedom)) * error
    lo, hi = interval
    if lo <= difference - half and difference + half <= hi:
        verdict = REPRODUCED
    elif difference + half < lo or difference - half > hi:
        verdict = NOT_REPRODUCED
    else:
        verdict = INCONCLUSIVE
    return Comparison(difference, half, paired, verdict)


def _one_sample(values: list[float]) -> tuple[float, float | None, float]:
    """Mean, its standard error (None with one value) and degrees of freedom."""
    mean = statistics.mean(values)
    if len(values) < 2:
        return mean, None, 0.0
    return mean, statistics.stdev(values) / math.sqrt(len(values)), len(values) - 1.0


def _welch(a: list[float], b: list[float]) -> tuple[float, float | None, float]:
    """Difference of means, its standard error (None when a side has one value) and Welch–Satterthwaite degrees
    of freedom."""
    difference = statistics.mean(a) - statistics.mean(b)
    if len(a) < 2 or len(b) < 2:
        return difference, None, 0.0
    var_a, var_b = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    total = var_a + var_b
    if total == 0:
        return difference, 0.0, 0.0
    freedom = total ** 2 / (var_a ** 2 / (len(a) - 1) + var_b ** 2 / (len(b) - 1))
    return difference, math.sqrt(total), freedom


@dataclass(frozen=True)
class Finding:
    """One claim judged on one (dataset, profile); ``dataset`` empty when nothing matched it anywhere."""

    protocol: str  # the protocol declaring the claim
    claim: Claim
    dataset: str
    profile: str
    a: Mapping[int, float]  # run id -> value
    b: Mapping[int, float] | None
    comparison: Comparison | None  # None when not measured or ambiguous
    verdict: str  # REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, ONE_SEED, NOT_MEASURED or SEVERAL_SETTINGS
    detail: str = ""  # what is missing, or which settings match


def judge_claims(store: Store, claims: Mapping[str, Sequence[Claim]]) -> list[Finding]:
    """Every claim (by declaring protocol) judged on every (dataset, profile) where one of its rows was measured."""
    runs = store.runs(status="succeeded").rename(columns={"id": "run_id"})
    metrics = store.metrics()
    findings = []
    for protocol in sorted(claims):
        for claim in claims[protocol]:
            findings += _judge(protocol, claim, runs, metrics)
    return findings


def _judge(protocol: str, claim: Claim, runs: pd.DataFrame, metrics: pd.DataFrame) -> list[Finding]:
    sides = {"A": _selected(runs, metrics, claim.a)}
    if claim.b is not None:
        sides["B"] = _selected(runs, metrics, claim.b)
    fixed = claim.a.dataset or (claim.b.dataset if claim.b else None)  # B is compared on A's dataset
    keys = sorted({key for rows in sides.values() for key in zip(rows["dataset"], rows["profile"])
                   if not fixed or key[0] == fixed})
    if not keys:
        return [Finding(protocol, claim, "", "", {}, None, None, NOT_MEASURED,
                        f"no succeeded runs match {' or '.join(sides)}")]
    findings = []
    for dataset, profile in keys:
        at = {side: rows[(rows["dataset"] == dataset) & (rows["profile"] == profile)] for side, rows in sides.items()}
        values = {side: _values(rows) for side, rows in at.items()}
        problems = [problem for side, selector in zip(at, (claim.a, claim.b))
                    if (problem := _problem(side, at[side], values[side], selector))]
        if problems:
            verdicts = {verdict for verdict, _ in problems}
            verdict = SEVERAL_SETTINGS if SEVERAL_SETTINGS in verdicts else NOT_MEASURED
            findings.append(Finding(protocol, claim, dataset, profile, values["A"], values.get("B"), None, verdict,
                                    "; ".join(detail for _, detail in problems)))
            continue
        comparison = compare(values["A"], values.get("B"), claim.interval)
        findings.append(Finding(protocol, claim, dataset, profile, values["A"], values.get("B"), comparison,
                                comparison.verdict))
    return findings


def _selected(runs: pd.DataFrame, metrics: pd.DataFrame, selector: RowSelector) -> pd.DataFrame:
    """The selector's current runs (run_id, variant, method, dataset, profile) with its metric's value, NaN where
    a run lacks it."""
    chosen = runs[runs["protocol"] == selector.protocol]
    if selector.dataset:
        chosen = chosen[chosen["dataset"] == selector.dataset]
    chosen = chosen[chosen["config"].map(selector.matches).astype(bool)]
    wanted = metrics[(metrics["split"] == selector.split) & (metrics["name"] == selector.metric)
                     & (metrics["class_name"] == selector.class_name if selector.class_name is not None
                        else metrics["class_name"].isna())]
    columns = ["run_id", "variant", "method", "dataset", "profile"]
    return chosen[columns].merge(wanted[["run_id", "value"]], on="run_id", how="left")


def _values(rows: pd.DataFrame) -> dict[int, float]:
    return {int(run): float(value) for run, value in zip(rows["run_id"], rows["value"]) if not math.isnan(value)}


def _problem(side: str, rows: pd.DataFrame, values: Mapping[int, float],
             selector: RowSelector) -> tuple[str, str] | None:
    """Why a row cannot be judged here, as (verdict, detail); None when it can."""
    if rows.empty:
        return NOT_MEASURED, f"no succeeded runs match {side}"
    settings = rows.drop_duplicates("variant").sort_values(["method", "variant"])
    if len(settings) > 1:
        listed = ", ".join(f"{method} ({variant[:8]})" for method, variant in zip(settings["method"],
                                                                                    settings["variant"]))
        return SEVERAL_SETTINGS, f"{len(settings)} match {side}: {listed}"
    if not values:
        what = selector.metric if selector.class_name is None else f"{selector.metric}[{selector.class_name}]"
        return NOT_MEASURED, f"{side}'s runs record no {what} on split {selector.split}"
    return None


def render_findings(findings: Sequence[Finding]) -> str:
    """The page: how to read it, a count of verdicts, then per declaring protocol its claims and a table."""
    measured = sum(1 for finding in findings if finding.a)
    lines = ["# Findings: the papers' claims, published vs measured", "", GENERATED_NOTE, measured_line(measured), "",
             HOW_TO_READ, ""]
    if not findings:
        return "\n".join(lines + ["No protocol declares claims.", ""])
    counts = pd.Series([finding.verdict for finding in findings]).value_counts()
    lines += ["Verdicts: " + ", ".join(f"{verdict} {counts[verdict]}" for verdict in sorted(counts.index)), ""]
    for protocol in sorted({finding.protocol for finding in findings}):
        mine = [finding for finding in findings if finding.protocol == protocol]
        lines += [f"## {protocol}", ""]
        for claim in {finding.claim.id: finding.claim for finding in mine}.values():
            rows = f"A = {claim.a.describe()}" + (f"; B = {claim.b.describe()}" if claim.b else "")
            lines += [f"- **{claim.id}**: {claim.statement}. Source: {claim.source}. {rows}."]
        lines += ["", _markdown(pd.DataFrame([_row(finding) for finding in mine])), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _row(finding: Finding) -> dict[str, str]:
    claim = finding.claim
    return {"claim": claim.id, "dataset": finding.dataset, "profile": finding.profile,
            "published A": _published(claim.published_a), "published B": _published(claim.published_b),
            "published Δ": _published(claim.published_difference()),
            "measured A": _measured(finding.a), "measured B": _measured(finding.b),
            "measured Δ [95% CI]": _difference(finding.comparison), "claimed Δ": _interval(claim.interval),
            "verdict": f"{finding.verdict}: {finding.detail}" if finding.detail else finding.verdict}


def _published(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _measured(values: Mapping[int, float] | None) -> str:
    return f"{_mean_std(values.values())} (n={len(values)})" if values else ""


def _interval(interval: tuple[float, float]) -> str:
    lo, hi = interval
    if hi == math.inf:
        return f"≥ {lo:g}"
    return f"≤ {hi:g}" if lo == -math.inf else f"[{lo:g}, {hi:g}]"


def _difference(comparison: Comparison | None) -> str:
    if comparison is None:
        return ""
    text = _number(comparison.difference)
    if comparison.half_width is not None:
        text += (f" [{_number(comparison.difference - comparison.half_width)}, "
                 f"{_number(comparison.difference + comparison.half_width)}]")
    return text + (" paired" if comparison.paired else "")
