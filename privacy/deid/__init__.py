"""De-identification of FHIR R4 data before anything is stored, logged or trained on."""

from privacy.deid.bundle import (
    AGE_EXTENSION_URL,
    DeidResult,
    config_fingerprint,
    config_sha256,
    deidentify_bundle,
    deidentify_with_report,
)
from privacy.deid.crypto import date_shift_days, pseudonym
from privacy.deid.report import DeidReport
from privacy.deid.ruleset import RuleFileError, RuleSet, default_rules, load_rules, parse_rules

__all__ = [
    "AGE_EXTENSION_URL",
    "DeidReport",
    "DeidResult",
    "RuleFileError",
    "RuleSet",
    "config_fingerprint",
    "config_sha256",
    "date_shift_days",
    "default_rules",
    "deidentify_bundle",
    "deidentify_with_report",
    "load_rules",
    "parse_rules",
    "pseudonym",
]
