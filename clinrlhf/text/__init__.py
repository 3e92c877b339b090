"""How patients and recommendations become text for the policy, and back."""

from clinrlhf.text.prompt import PROMPT_END, parse_drug, render_prompt, render_response

__all__ = ["PROMPT_END", "parse_drug", "render_prompt", "render_response"]
