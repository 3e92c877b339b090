"""summary.json's paths, relative to CLINRLHF_HOME as well, so that a copied home still finds them.

CONTRACT.md promises `policy_dir`, `report` and `mlflow_tracking_uri` as paths and a URI that
scripts open as they are, so they stay absolute. Beside them, `home_relative` holds the same
places relative to the home (the tracking store as its SQLite file); `resolve_summary` rebuilds the
absolute keys from it against whichever folder the home now is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clinrlhf.lineage.home_artifacts import sqlite_folder

HOME_RELATIVE = "home_relative"
PATH_KEYS = ("policy_dir", "report", "report_pdf")
TRACKING_URI = "mlflow_tracking_uri"


def _under(path: Path, home: Path) -> str | None:
    path, home = path.resolve(), home.resolve()
    return str(path.relative_to(home)) if path.is_relative_to(home) else None


def with_home_relative(summary: dict[str, Any], home: Path) -> dict[str, Any]:
    """`summary` plus `home_relative`: each path key (and the SQLite tracking store) that lies under
    `home`, relative to it. Places outside the home (a tracking server, another database) are left out."""
    relative: dict[str, str] = {}
    for key in PATH_KEYS:
        if summary.get(key) and (rel := _under(Path(summary[key]), home)) is not None:
            relative[key] = rel
    uri = summary.get(TRACKING_URI)
    store = sqlite_folder(uri)
    if uri and store is not None and (rel := _under(store / Path(uri).name, home)) is not None:
        relative[TRACKING_URI] = rel
    return summary | {HOME_RELATIVE: relative}


def resolve_summary(summary: dict[str, Any], home: Path) -> dict[str, Any]:
    """The summary with its absolute keys rebuilt from `home_relative` against `home`."""
    relative = summary.get(HOME_RELATIVE, {})
    resolved = dict(summary)
    for key in PATH_KEYS:
        if key in relative:
            resolved[key] = str(home / relative[key])
    if TRACKING_URI in relative:
        resolved[TRACKING_URI] = f"sqlite:///{home / relative[TRACKING_URI]}"
    return resolved


def read_summary(path: Path, home: Path) -> dict[str, Any]:
    """A summary.json as written under some home, its paths resolved against `home`."""
    return resolve_summary(json.loads(path.read_text()), home)
