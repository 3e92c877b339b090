"""FHIR R4 resources the service publishes and accepts."""
