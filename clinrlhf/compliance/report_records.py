"""The report's view of the change records and CHAI cards of a run's promoted versions, read back
from the compliance experiment (clinrlhf.compliance.promotion_records) and flattened for the
template."""

from __future__ import annotations

from typing import Any

from mlflow.tracking import MlflowClient

from clinrlhf.compliance.evidence import Evidence
from clinrlhf.compliance.promotion_records import StoredRecords, read_records


def _text(value: Any) -> str:
    """A record's value as a reader sees it: mappings as "key value; ...", rows as "a, b, c; ..."."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict):
        return "; ".join(
            f"{k} ({_text(v)})" if isinstance(v, dict) else f"{k} {_text(v)}" for k, v in value.items()
        )
    if isinstance(value, list):
        return "; ".join(
            ", ".join(_text(v) for v in r.values()) if isinstance(r, dict) else _text(r) for r in value
        )
    return "–" if value is None else str(value)


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.3f}"


def _impact_rows(impact: dict[str, Any]) -> list[dict[str, str]]:
    rows = [{"attribute": "overall", "group": "all", **impact["overall"]}, *impact["subgroups"]]
    return [
        {
            "label": f"{r['attribute']} {r['group']}",
            "n": f"{r['n']} / {_text(r['previous n'])}",
            **{
                f"{short}_{side}": _text(r[metric][side])
                if side != "difference"
                else _signed(r[metric][side])
                for metric, short in (("concordance", "c"), ("unsafe_rate", "u"))
                for side in ("previous", "new", "difference")
            },
        }
        for r in rows
    ]


def _change_record(stored: StoredRecords) -> dict[str, Any]:
    view: dict[str, Any] = {"version": stored.version, "run_id": stored.run_id, "problem": stored.problem}
    if stored.records is None:
        return view
    record = stored.records.change_record
    protocol = record["modification_protocol"]
    return view | {
        "summary": record["description_of_modification"]["summary"],
        "previous": record["previous_version"],
        "promoted": record["promoted"],
        "changes": record["description_of_modification"]["changes"],
        "data": [(k, _text(v)) for k, v in protocol["data"].items()],
        "training": [(k, _text(v)) for k, v in protocol["training"].items()],
        "criteria": protocol["acceptance_criteria"]["results"],
        "override": protocol["acceptance_criteria"]["override reason"],
        "compared": record["impact_assessment"]["compared with"],
        "impact": _impact_rows(record["impact_assessment"]),
    }


def _card_sections(card: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """CHAI sections as (title, [(element, value)]); nested groups become "Group / Element"."""
    sections = []
    for title, body in card.items():
        if not isinstance(body, dict):
            continue
        items: list[tuple[str, str]] = []
        for key, value in body.items():
            if isinstance(value, dict):
                items += [(f"{key} / {k}", _result_text(v)) for k, v in value.items()]
            else:
                items.append((key, _result_text(value)))
        sections.append((title, items))
    return sections


def _result_text(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(r, dict) and "label" in r for r in value):
        return "; ".join(
            f"{r['label']}: " + ", ".join(f"{k} {v}" for k, v in r.items() if k != "label") for r in value
        )
    return _text(value)


def promotion_records(client: MlflowClient, ev: Evidence) -> dict[str, list[dict[str, Any]]]:
    """{"change_records": [...], "chai_cards": [...]}, one each per promoted version of the run."""
    stored = [s for mv in ev.versions if (s := read_records(client, mv)) is not None]
    cards = [
        {
            "version": s.version,
            "schema": s.records.chai_card.get("schema"),
            "sections": _card_sections(s.records.chai_card),
        }
        for s in stored
        if s.records is not None
    ]
    return {"change_records": [_change_record(s) for s in stored], "chai_cards": cards}
