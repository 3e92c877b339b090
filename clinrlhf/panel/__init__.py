"""A simulated clinician panel and EHR that give feedback through the real HTTP API."""
