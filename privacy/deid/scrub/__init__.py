"""Free-text scrubbing: pattern recognizers, an offline name dictionary and the patient's own
identifiers find typed spans; an operator replaces them. No model, no network."""

from privacy.deid.scrub.patient_terms import PatientTerms, patient_terms
from privacy.deid.scrub.scrubber import Scrubbed, Scrubber
from privacy.deid.scrub.spans import SAFE_HARBOR, Span

__all__ = ["SAFE_HARBOR", "PatientTerms", "Scrubbed", "Scrubber", "Span", "patient_terms"]
