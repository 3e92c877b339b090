"""The fairness benchmark's Markdown: the audit's subgroup table, steering's arms, the loop's two runs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fairness_runs import LOOP_ARMS

from clinrlhf.compliance.fairness_gaps import METRICS, POLICIES


def _ci(fig: Mapping[str, float | None]) -> str:
    value, low, high = fig.get("value"), fig.get("ci_low"), fig.get("ci_high")
    if value is None or not math.isfinite(value):
        return "–"
    if low is None or high is None:
        return f"{value:.3f}"
    return f"{value:.3f} ({low:.3f}–{high:.3f})"


def _row(attribute: str, group: str, n: str, row: Mapping[str, Any]) -> str:
    cells = [_ci(row[label][metric]) for metric in METRICS for label in POLICIES]
    return f"| {attribute} | {group} | {n} | " + " | ".join(cells) + " |"


def _gap_line(gap: Mapping[str, Any], limit: float, min_n: int) -> str:
    if gap["gap"] is None:
        missing = f"no two groups with n >= {min_n}"
        return f"| {METRICS[gap['metric']]} | {gap['policy']} | – | – | {missing} | no |"
    verdict = "yes" if gap["gap"] <= limit else "no"
    return (
        f"| {METRICS[gap['metric']]} | {gap['policy']} | {gap['gap']:.3f} | {gap['attribute']} "
        f"| {gap['high_group']} {gap['high_value']:.3f} vs {gap['low_group']} {gap['low_value']:.3f} "
        f"| {verdict} |"
    )


def audit_markdown(report: Mapping[str, Any]) -> str:
    min_n, limit = report["criteria"]["min_subgroup_n"], report["criteria"]["max_subgroup_gap"]
    header = " | ".join(f"{label} {METRICS[m]} (95% CI)" for m in METRICS for label in POLICIES)
    lines = [f"| attribute | group | n | {header} |", "|---|---|---|---|---|---|---|"]
    lines.append(_row("all", "–", str(report["overall"]["n"]), report["overall"]))
    for row in report["groups"]:
        n = str(row["n"]) if row["in_gap"] else f"{row['n']} (n < {min_n}: not in the gap)"
        lines.append(_row(row["attribute"], row["group"], n, row))
    lines += [
        "",
        f"Largest gap between two groups of one attribute, groups with n >= {min_n} only:",
        "",
        f"| metric | policy | gap | attribute | groups (high vs low) | <= {limit:.3f} |",
        "|---|---|---|---|---|---|",
        *(_gap_line(g, limit, min_n) for g in report["gaps"]),
        "",
        "Promotion gate (clinrlhf.compliance.criteria.check_criteria, aligned policy):",
        "",
        *(
            f"- {g['name']}: {g['measured']} (required {g['required']}): {'pass' if g['passed'] else 'FAIL'}"
            for g in report["gate"]
        ),
    ]
    return "\n".join(lines)


ARM_LABELS = {
    "unsteered": "unsteered (first N)",
    "population": "steered to population shares",
    "equal": "equal shares",
    "floor": "floor",
}


def _sent(row: Mapping[str, Any]) -> str:
    spread = "" if row["sent_min"] == row["sent_max"] else f" [{row['sent_min']}–{row['sent_max']}]"
    ratio = f"×{row['ratio']:.2f}" if math.isfinite(row["ratio"]) else "–"
    return f"{row['sent_mean']:.1f}{spread} ({100 * row['share']:.1f}%, {ratio})"


def _validation_cell(found: Mapping[str, Any] | None) -> str:
    if not found:
        return "0 (no interval)"
    return f"{found['scenarios']} (±{found['half_width']:.2f})"


def _targets_table(
    targets: Mapping[str, Mapping[str, Mapping[str, float]]], labels: Mapping[str, str]
) -> list[str]:
    lines = [
        "Target shares given to steered_order → the share each got (mean over seeds; a group smaller than its target runs out):",
        "",
        "| group | " + " | ".join(labels[a] for a in targets) + " |",
        "|---" * (1 + len(targets)) + "|",
    ]
    for g in sorted(next(iter(targets.values()))["target"]):
        cells = [f"{100 * t['target'][g]:.1f}% → {100 * t['achieved'][g]:.1f}%" for t in targets.values()]
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    return lines


def steering_markdown(report: Mapping[str, Any]) -> str:
    arms, floor = report["arms"], report["floor"]
    labels = {**ARM_LABELS, "floor": f"floor {floor:g}"}
    groups = sorted(set(arms["unsteered"]["groups"]) | set(report["validation"]))
    head = " | ".join(f"{labels[a]}: sent (share, ×pop)" for a in arms)
    lines = [
        f"Feedback cohort {report['sizes']['feedback']} patients (cohort seed {report['cohort_seed']}, "
        f"{report['date']}), by {report['attribute']}; budget {report['budget']} patients; "
        f"steered arms drawn with seeds {' '.join(map(str, report['draw_seeds']))} (mean [min–max]).",
        "",
        f"| group | population (share) | validation scenarios (±95% half-width) | {head} |",
        "|---" * (3 + len(arms)) + "|",
    ]
    for g in groups:
        pop = arms["unsteered"]["groups"].get(g)
        pop_cell = f"{pop['population']} ({100 * pop['population_share']:.1f}%)" if pop else "0"
        cells = [_sent(arms[a]["groups"][g]) if pop else "–" for a in arms]
        lines.append(
            f"| {g} | {pop_cell} | {_validation_cell(report['validation'].get(g))} | "
            + " | ".join(cells)
            + " |"
        )
    lines += ["", *_targets_table(report["targets"], labels)]
    small = arms["unsteered"]["smallest_group"]
    got = ", ".join(f"{labels[a]} {_sent(arms[a]['smallest_group'])}" for a in arms)
    count = f"{small['population']} patient{'s' * (small['population'] != 1)}"
    lines += ["", f"Smallest group {small['group']} ({count}): {got}."]
    return "\n".join(lines)


def _gap_cell(gap: Mapping[str, Any] | None) -> str:
    if gap is None:
        return "–"
    return f"{gap['gap']:.3f} ({gap['high_group']} {gap['high_value']:.3f} vs {gap['low_group']} {gap['low_value']:.3f})"


def loop_markdown(report: Mapping[str, Any]) -> str:
    arms, attribute = report["arms"], report["attribute"]
    groups = sorted(set().union(*(a["groups"] for a in arms.values())))
    lines = [
        f"Paired pipeline runs (seed {report['seed']}): {report['budget']} of {report['feedback_cohort']} "
        f"feedback patients judged, unsteered (the first N) or steered to equal shares of {attribute}.",
        "",
        f"| {attribute} | held-out n | sent: unsteered / steered | supervised concordance "
        "| aligned concordance: unsteered / steered | aligned unsafe: unsteered / steered |",
        "|---|---|---|---|---|---|",
    ]
    for g in groups:
        rows = [arms[a]["groups"].get(g) for a in LOOP_ARMS]
        first = next(r for r in rows if r)
        sent = " / ".join(str(r["sent"]) if r else "0" for r in rows)
        conc = " / ".join(_ci(r["aligned"]["concordance"]) if r else "–" for r in rows)
        unsafe = " / ".join(_ci(r["aligned"]["unsafe_rate"]) if r else "–" for r in rows)
        lines.append(
            f"| {g} | {first['n']} | {sent} | {_ci(first['supervised']['concordance'])} | {conc} | {unsafe} |"
        )
    overall = [arms[a]["overall"]["aligned"] for a in LOOP_ARMS]
    lines += [
        f"| all | {arms['unsteered']['overall']['n']} | {report['budget']} / {report['budget']} "
        f"| {_ci(arms['unsteered']['overall']['supervised']['concordance'])} "
        f"| {' / '.join(_ci(o['concordance']) for o in overall)} "
        f"| {' / '.join(_ci(o['unsafe_rate']) for o in overall)} |",
        "",
        f"| aligned policy | largest {attribute} gap, concordance | largest {attribute} gap, unsafe rate | gate |",
        "|---|---|---|---|",
    ]
    for arm in LOOP_ARMS:
        gaps, gate = arms[arm]["attribute_gaps"], arms[arm]["gate"]
        verdict = "pass" if all(g["passed"] for g in gate) else "fails"
        lines.append(
            f"| {arm} | {_gap_cell(gaps['concordance'])} | {_gap_cell(gaps['unsafe_rate'])} | {verdict} |"
        )
    return "\n".join(lines)
