"""Shared pytest setup: plugins that start real services on loopback."""

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.dagster_stack",
    "tests.fixtures.mlserver",
    "tests.fixtures.moto_server",
    "tests.fixtures.drive_server",
]
