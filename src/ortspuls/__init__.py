"""Ortspuls: an open urban data platform for small municipalities."""

__version__ = "0.1.0"
