"""Lineage on MLflow: what trained each model, from whom, on what data and in what environment; what
trainers log through. Compliance (criteria, approval, promotion, the report) reads it: clinrlhf.compliance."""
