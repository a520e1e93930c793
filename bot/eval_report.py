"""Evaluation report as text: the table `faqbot eval` prints and `evaluate_retrieval.ipynb` shows.

Kept apart from bot/evaluate.py, which computes the numbers: this module only lays them out (metrics by language,
the failure count and the most frequent confusions).
"""

from __future__ import annotations

from .evaluate import METRICS, RATES, Report, confusions

__all__ = ["format_report"]


def _cell(value: float | int | None) -> str:
    if value is None:
        return "—"
    return str(value) if isinstance(value, int) else f"{value:.3f}"


def format_report(report: Report, confused: int = 5) -> str:
    """A readable table: metrics by language, the failure count and the most frequent confusions."""
    overall = report.metrics["all"]
    groups = list(report.metrics)
    lines = [f"{report.source or 'queries'}: {overall['n_queries']} queries ({overall['n_in_scope']} in scope, "
             f"{overall['n_out_of_scope']} out of scope: {overall['n_near']} near-domain, {overall['n_far']} far), "
             f"answer threshold {report.threshold:.3f}", "",
             f"{'':<30}" + "".join(f"{g:>8}" for g in groups)]
    for name in METRICS:
        if all(report.metrics[g][name] is None for g in groups):
            continue  # e.g. no near-domain queries in this file
        label = RATES.get(name, name)
        lines.append(f"{label:<30}" + "".join(f"{_cell(report.metrics[g][name]):>8}" for g in groups))
    lines += ["", f"Failures: {len(report.failures)} (per-query rows: --json)"]
    pairs = confusions(report.rows)[:confused]
    if pairs:
        lines.append("Most confused (expected -> ranked first): "
                     + ", ".join(f"{e} -> {g} x{n}" for e, g, n in pairs))
    return "\n".join(lines)
