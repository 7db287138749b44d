"""Tenants and API keys: who is calling. Keys are shown once; only their SHA-256 is stored."""
