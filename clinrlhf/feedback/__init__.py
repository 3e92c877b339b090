"""Clinicians' judgments as the training data understands them: de-identified and source-tagged."""

from clinrlhf.feedback.judgment import Judgment, snapshot_sha256, to_ndjson

__all__ = ["Judgment", "snapshot_sha256", "to_ndjson"]
