"""Alignment methods compared on one run's data: DPO and RLAIF beside the pipeline's PPO."""
