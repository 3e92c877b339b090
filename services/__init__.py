"""The clinrlhf HTTP service (FastAPI): CDS Hooks 2.0 and FHIR R4 on top of the `clinrlhf` library."""
