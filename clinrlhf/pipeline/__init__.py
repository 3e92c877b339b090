"""The whole loop: SFT, feedback through the API, DP reward, PPO, evaluation, lineage and report."""
