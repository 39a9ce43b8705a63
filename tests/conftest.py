"""Shared pytest setup: plugins that start real services on loopback."""

pytest_plugins = [
    "testkit.postgres",
    "testkit.dagster_stack",
    "testkit.mlserver",
    "testkit.kserve",
    "testkit.photos",
    "testkit.moto_server",
    "testkit.drive_server",
]
