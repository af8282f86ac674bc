"""Observation writer (the one way in for observations) and the in-process event bus."""
