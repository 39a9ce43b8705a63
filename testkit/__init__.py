"""Shared test support: real services on loopback (PostgreSQL, the Dagster stack, MLServer,
moto, a Drive v3 server), pytest plugins for them, and helpers used by the tests and the
benchmarks alike. The benchmarks import this package, never `tests`."""
