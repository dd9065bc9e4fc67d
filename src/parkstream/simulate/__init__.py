"""Simulated ChirpStack traffic: the messages a real network server would publish."""
