"""Every error the orchestrator raises, in one place.

ConstellationError
├── InstructionsInvalid      the tree failed validation; carries every Problem
├── OperationError           an operation failed; message says what and where
│   ├── TransientError       worth retrying (network fault, 429/5xx, timeout)
│   ├── Canceled             the run was canceled while the operation worked
│   ├── UnsafeArchive        an archive entry broke an extraction limit
│   └── PathOutsideDataRoot  a local path resolved outside the configured root
├── ArtifactError            the artifact store could not read or write
└── UnsafePath               a name cannot be a path inside its folder (callers reword it)
"""

from __future__ import annotations

from dataclasses import dataclass


class ConstellationError(Exception):
    """Base of every error raised by the orchestrator."""


@dataclass(frozen=True)
class Problem:
    """One validation problem: where it is, what was expected, what was received."""

    path: str
    message: str
    expected: str | None = None
    received: str | None = None

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


class OperationError(ConstellationError):
    """An operation failed; the message names the operation's input that caused it."""


class TransientError(OperationError):
    """A failure worth retrying: network fault, throttling, server error, timeout."""


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
