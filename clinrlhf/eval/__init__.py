"""Held-out evaluation of a policy against the world: concordance and unsafe rate, by subgroup."""
