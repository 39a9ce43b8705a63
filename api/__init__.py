"""Constellation's HTTP API: validates instructions, runs them on Dagster over GraphQL."""
