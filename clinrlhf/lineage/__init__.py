"""Lineage on MLflow: what trained each model, from whom, with what privacy spent."""
