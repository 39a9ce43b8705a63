"""Shared pytest setup: plugins that start real services on loopback."""

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.dagster_stack",
]
