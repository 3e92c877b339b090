"""The compliance report: one self-contained HTML file per pipeline run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape


@dataclass(frozen=True)
class Criterion:
    name: str
    required: str
    measured: str
    passed: bool


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("clinrlhf.lineage", "templates"), autoescape=select_autoescape(["html"])
    )


def render_report(context: dict[str, Any]) -> str:
    context = {"generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), **context}
    return _environment().get_template("report.html").render(**context)


def write_report(context: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(context), encoding="utf-8")
    return path
