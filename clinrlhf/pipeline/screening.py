"""Screening a snapshot against the store, before reward training: the checks of
`clinrlhf.feedback.screening` find unreliable raters, flagged clinicians are quarantined (an audit
event each; `clinrlhf.store.quarantine`), and every quarantined clinician's judgments are left out
until a person releases them with `clinrlhf quarantine release`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.feedback.judgment import Judgment
from clinrlhf.feedback.safety import Grade
from clinrlhf.feedback.screening import ScreeningConfig, exclude, quality_report, screen
from clinrlhf.store.db import transaction
from clinrlhf.store.quarantine import quarantine, quarantined


def screen_snapshot(
    sessions: sessionmaker[Session],
    judgments: Sequence[Judgment],
    *,
    actor: str,
    reasons: Path | None = None,
    config: ScreeningConfig | None = None,
    grade: Grade | None = None,
) -> tuple[list[Judgment], dict[str, Any]]:
    """(the judgments to train on, the quality report). Quarantines flagged clinicians in the store
    when `config.auto_quarantine`, then leaves out every quarantined clinician's judgments. With
    `grade` (the guideline) and `config.safety.enabled`, the safety check runs too."""
    config = config or ScreeningConfig()
    found = screen(judgments, config, grade)
    with transaction(sessions) as session:
        held = set(quarantined(session))
        for clinician, why in sorted(found.flags.items()) if config.auto_quarantine else []:
            if clinician not in held:
                quarantine(session, clinician, reason=why, actor=actor, reasons=reasons)
                held.add(clinician)
    kept = exclude(judgments, held)
    dropped = len(judgments) - len(kept)
    report = quality_report(judgments, found.result, found.reliability, config, held, dropped, found.safety)
    return kept, report
