"""The change record and the CHAI card as Markdown, for people reading MLflow or an export: the JSON
beside each is the record; this is its rendering, section by section."""

from __future__ import annotations

from typing import Any


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, float) for v in value):
        return f"{value[0]:.3f}–{value[1]:.3f}"  # an interval
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _title(key: str) -> str:
    return key.replace("_", " ")[:1].upper() + key.replace("_", " ")[1:]


def _table(rows: list[dict[str, Any]]) -> list[str]:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return lines


def _section(data: Any, depth: int) -> list[str]:
    """Nested mappings become headings and bullet lists; lists of mappings become tables."""
    if not isinstance(data, dict):
        if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
            return [*_table([_flat(r) for r in data]), ""]
        return [_cell(data), ""]
    lines: list[str] = []
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict | list) or not v or _is_pair(v)}
    for key, value in scalars.items():
        lines.append(f"- **{key}**: {_cell(value)}")
    if scalars:
        lines.append("")
    for key, value in data.items():
        if key in scalars:
            continue
        lines += [f"{'#' * min(depth, 6)} {_title(key)}", ""] + _section(value, depth + 1)
    return lines


def _is_pair(value: Any) -> bool:
    return isinstance(value, list) and all(not isinstance(v, dict | list) for v in value)


def _flat(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """One table row from a nested mapping: {"concordance": {"new": x}} -> {"concordance new": x}."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= _flat(value, f"{name} ")
        else:
            out[name] = value
    return out


def _signed(row: dict[str, Any]) -> dict[str, Any]:
    """Differences with their sign, so that a drop and a rise read apart."""
    return {
        k: f"{v:+.3f}" if k.endswith("difference") and isinstance(v, float) else v for k, v in row.items()
    }


def change_record_markdown(record: dict[str, Any]) -> str:
    head = [
        f"# Change record{' (rollback)' if record.get('change') == 'rollback' else ''}: "
        f"{record['model']} version {record['version']}",
        "",
        f"Structured after {record['guidance']}. Previous production version: {record['previous_version']}.",
        "",
    ]
    decided = "rolled_back" if record.get("change") == "rollback" else "promoted"
    body = {k: record[k] for k in (decided, "description_of_modification", "modification_protocol")}
    impact = record["impact_assessment"]
    tail = [
        "## Impact assessment",
        "",
        f"Compared with: {impact['compared with']}. New eval run: {impact['new eval run']}. "
        "Differences are new − previous.",
        "",
        *_table([_signed({"attribute": "overall", "group": "all", **_flat(impact["overall"])})]),
        *(_table([_signed(_flat(r)) for r in impact["subgroups"]])[2:] if impact["subgroups"] else []),
        "",
    ]
    return "\n".join(head + _section(body, 2) + tail)


def chai_card_markdown(card: dict[str, Any]) -> str:
    name = card["BasicInfo"]["ModelName"]
    version = card["ReleaseInfo"]["ReleaseVersion"]
    head = [f"# CHAI Applied Model Card: {name}", "", f"{card['schema']}. Release: {version}.", ""]
    return "\n".join(head + _section({k: v for k, v in card.items() if k != "schema"}, 2))
