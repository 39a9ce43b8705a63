"""Clients for outside systems: one module each, errors translated to orchestrator.errors."""
