"""De-identification at the door (``privacy.deid``) and differential privacy (``privacy.dp``).

This package imports neither ``clinrlhf`` nor ``services``: it is the bottom of the stack.
"""
