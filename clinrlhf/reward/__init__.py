"""The reward model: clinicians' preferences as a scalar, learned under differential privacy."""
