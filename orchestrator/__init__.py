"""Constellation's orchestrator: the catalog, validation, planning and execution.

Importing this package does not import Dagster; `orchestrator.definitions` does.
"""
