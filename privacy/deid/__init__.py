"""De-identification of FHIR R4 data before anything is stored, logged or trained on."""

from privacy.deid.bundle import AGE_EXTENSION_URL, DeidResult, deidentify_bundle
from privacy.deid.crypto import date_shift_days, pseudonym

__all__ = ["AGE_EXTENSION_URL", "DeidResult", "date_shift_days", "deidentify_bundle", "pseudonym"]
