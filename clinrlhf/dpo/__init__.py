"""Direct Preference Optimization: a baseline that learns from preference pairs without a reward model."""
