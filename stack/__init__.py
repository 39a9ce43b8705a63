"""Start Constellation's processes on loopback: Dagster webserver, daemon and the API.

`make run` uses it (python -m stack), and so do the integration tests, so what a
newcomer starts is what the tests prove.
"""

from stack.instance import PostgresStorage, write_instance, write_workspace
from stack.processes import Service, Stack, free_port

__all__ = ["PostgresStorage", "Service", "Stack", "free_port", "write_instance", "write_workspace"]
