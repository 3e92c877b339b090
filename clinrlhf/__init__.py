"""clinrlhf: improve a treatment-recommendation policy from clinicians' judgments, privately.

The package is the core ML library. Dependencies point one way: ``services`` imports ``clinrlhf``,
which imports ``privacy``. Only de-identified data ever crosses into this package.
"""

__version__ = "0.1.0"
