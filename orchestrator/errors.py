"""Every error the orchestrator raises, in one place.

ConstellationError
├── InstructionsInvalid      the tree failed validation; carries every Problem
├── NodeFailed               an instruction failed in a run; `message` is what the user is told
├── OperationError           an operation failed; message says what and where
│   ├── TransientError       worth running the operation again (a corrupt download)
│   ├── RetriesExhausted     a network fault, 429 or 5xx outlasted the connector's retries
│   ├── Canceled             the run was canceled while the operation worked
│   ├── UnsafeArchive        an archive entry broke an extraction limit
│   └── PathOutsideDataRoot  a local path resolved outside the configured root
├── ArtifactError            the artifact store could not read or write
└── UnsafePath               a name cannot be a path inside its folder (callers reword it)
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ConstellationError(Exception):
    """Base of every error raised by the orchestrator."""


class Problem(BaseModel):
    """One validation problem: where it is, what was expected, what was received.

    The one Problem: validation makes it, the API answers with it (`ErrorBody`),
    the CLI reads it back. Built positionally, `Problem(path, message, ...)`.
    """

    model_config = ConfigDict(frozen=True)

    path: str = Field(description="JSON path of the problem, e.g. instructions[1].parameters.data")
    message: str
    expected: str | None = None
    received: str | None = None

    def __init__(
        self,
        path: str,
        message: str,
        expected: str | None = None,
        received: str | None = None,
    ) -> None:
        super().__init__(path=path, message=message, expected=expected, received=received)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def as_dict(self) -> dict[str, str | None]:
        return {
            "path": self.path,
            "message": self.message,
            "expected": self.expected,
            "received": self.received,
        }


class InstructionsInvalid(ConstellationError):
    """The instruction tree failed validation; `problems` lists every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = "\n".join(f"- {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in the instructions:\n{lines}")


class NodeFailed(ConstellationError):
    """An instruction failed in a run; `message` (with its JSON path) is what the user is told."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class OperationError(ConstellationError):
    """An operation failed; the message names the operation's input that caused it."""


class TransientError(OperationError):
    """A fault of the whole operation that running it again may fix (its `RetryPolicy`):
    a download whose size or checksum is wrong, an object that changed while read."""


class RetriesExhausted(OperationError):
    """A network fault, timeout, 429 or 5xx that lasted through the connector's retries
    (orchestrator/retry.py); the message says how many attempts. Not retried again."""


class RepositoryUnsupported(OperationError):
    """The model server cannot load or unload models (no model repository extension, or
    model control turned off): it serves the models it started with. The message says
    which request answered what."""


class Canceled(OperationError):
    """The run was canceled; the operation stopped where it was."""

    def __init__(self, what: str = "canceled"):
        super().__init__(what)


class UnsafeArchive(OperationError):
    """An archive entry would escape its folder, is a link, or breaks a size limit."""


class PathOutsideDataRoot(OperationError):
    """A local path resolved outside the configured data root."""


class ArtifactError(ConstellationError):
    """The artifact store could not read or write an artifact."""


class UnsafePath(ConstellationError):
    """A name cannot be a path inside its folder; `reason` says why, without any server path.

    Raised by `orchestrator.paths`; each caller turns it into its own error, naming the
    entry, item or request field it came from.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
