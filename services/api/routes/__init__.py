"""One router per area: health, CDS Hooks, FHIR, model card."""
