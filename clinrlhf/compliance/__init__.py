"""Compliance on top of the lineage: acceptance criteria, approval, promotion and rollback of the MLflow
model registry's versions, governance records, the compliance report (HTML, PDF, plots), model card,
HTI-1 source attributes, FHIR provenance and the privacy spent. Trainers never import it: they log
through clinrlhf.lineage, and compliance reads what they logged."""
