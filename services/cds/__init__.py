"""CDS Hooks 2.0: discovery, prefetch assembly, cards and feedback, apart from HTTP."""
