"""RLAIF baseline: preference labels from a guideline rubric instead of clinicians."""
