"""De-identification of FHIR R4 data before anything is stored, logged or trained on."""

from privacy.deid.bundle import AGE_EXTENSION_URL, DeidResult, config_sha256, deidentify_bundle
from privacy.deid.crypto import date_shift_days, pseudonym

__all__ = [
    "AGE_EXTENSION_URL",
    "DeidResult",
    "config_sha256",
    "date_shift_days",
    "deidentify_bundle",
    "pseudonym",
]
