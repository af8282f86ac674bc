"""Tenants, API keys and (later) accounts, roles and visibility."""
