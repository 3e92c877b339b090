"""What a charged run logs to MLflow about the deployment's privacy odometer it was charged to:
clinrlhf.reward.ledger writes them, clinrlhf.compliance.privacy_spent reads them for the report."""

LEDGER_DELTA, LEDGER_BUDGET, LEDGER_UNIT = "ledger.delta", "ledger.budget_epsilon", "ledger.privacy_unit"
LEDGER_EPSILON, LEDGER_RUNS = "ledger.epsilon", "ledger.runs"
