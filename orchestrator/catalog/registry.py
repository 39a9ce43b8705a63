"""The operation catalog: one registry that names every operation and its types.

An operation is a function `fn(params, ctx) -> Value` decorated with
`@operation(...)`; its first parameter's annotation is the pydantic model of its
parameters. The catalog feeds `GET /operations`, validation and execution alike.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Union

from pydantic import BaseModel

from orchestrator.catalog.values import Value
from orchestrator.retry import backoff

if TYPE_CHECKING:
    from orchestrator.context import OperationContext

# An operation's `cache_key(params, ctx)` says how its output is keyed across runs
# (orchestrator/cache.py): the version of what it reads from outside (an S3 ETag, a Drive
# md5Checksum, file sizes and mtimes, a model version) as JSON, "" when its output follows
# from its parameters and inputs alone, None when it cannot tell (then it runs).


def pure(params: Any, ctx: OperationContext) -> str:
    """The cache key of an operation whose output follows from its parameters and inputs."""
    return ""


@dataclass(frozen=True)
class RetryPolicy:
    """How often an operation runs again after a TransientError, with exponential backoff.

    For faults of the whole operation only, such as a download whose checksum is
    wrong. A request that failed on a network fault, 429 or 5xx is retried by its
    connector (orchestrator/retry.py), which then raises RetriesExhausted: not a
    TransientError, so the attempts are never multiplied by this policy's.
    """

    max_attempts: int = 1
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 10.0

    def delay(self, attempt: int) -> float:
        return backoff(attempt, self.backoff_seconds, self.max_backoff_seconds)


@dataclass(frozen=True)
class InputField:
    """A parameter that can be fed by a nested instruction or a ref; `many` when it is a
    list of values (`list[Predictions]`), fed by an array of them."""

    name: str
    accepts: tuple[type[Value], ...]
    accepts_literal: bool
    many: bool = False

    def fits(self, output: type[Value]) -> bool:
        return issubclass(output, self.accepts)

    @property
    def accepted_names(self) -> str:
        return " or ".join(cls.type_name for cls in self.accepts)


@dataclass(frozen=True)
class Operation:
    """One entry of the catalog."""

    name: str
    description: str
    params: type[BaseModel]
    output: type[Value]
    fn: Callable[[Any, OperationContext], Value] = field(repr=False)
    cleanup: bool = False
    retry: RetryPolicy = RetryPolicy()
    # Cached across runs when set (see `pure`); never with side effects.
    cache_key: Callable[[Any, OperationContext], Any] | None = field(default=None, repr=False)
    side_effects: bool = False  # it changes something outside (deploys, deletes, uploads)
    cache_version: str = "1"  # raise it when a change of the code changes the output

    @property
    def cacheable(self) -> bool:
        return self.cache_key is not None and not self.side_effects

    @cached_property
    def inputs(self) -> dict[str, InputField]:
        """Parameters whose type includes an operation output."""
        found = {}
        for name, info in self.params.model_fields.items():
            members = _union_members(info.annotation)
            values = _values(members)
            lists = [m for m in members if typing.get_origin(m) is list and typing.get_args(m)]
            listed = _values([v for m in lists for v in _union_members(typing.get_args(m)[0])])
            if values:
                found[name] = InputField(name, values, accepts_literal=len(values) < len(members))
            elif listed:
                literal = len(lists) < len(members)
                found[name] = InputField(name, listed, accepts_literal=literal, many=True)
        return found

    def describe(self) -> dict[str, Any]:
        """The palette entry served by `GET /operations`."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.params.model_json_schema(),
            "inputs": {name: [c.type_name for c in f.accepts] for name, f in self.inputs.items()},
            "output": self.output.type_name,
            "cleanup": self.cleanup,
            "cached": self.cacheable,
            "side_effects": self.side_effects,
            "retry": {
                "max_attempts": self.retry.max_attempts,
                "backoff_seconds": self.retry.backoff_seconds,
            },
        }


def _values(members: Iterable[Any]) -> tuple[type[Value], ...]:
    return tuple(m for m in members if isinstance(m, type) and issubclass(m, Value))


def _union_members(annotation: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return typing.get_args(annotation)
    return (annotation,)


def operation(
    *,
    name: str,
    output: type[Value],
    cleanup: bool = False,
    retry: RetryPolicy = RetryPolicy(),
    cache_key: Callable[[Any, OperationContext], Any] | None = None,
    side_effects: bool = False,
    cache_version: str = "1",
) -> Callable[[Callable[..., Value]], Operation]:
    """Declare a function as an operation. Its docstring is the description.

    `cache_key` (e.g. `pure`) lets a run reuse an earlier run's output; an operation with
    `side_effects` is never cached nor reused."""
    if cache_key is not None and side_effects:
        raise ValueError(f"operation {name!r} has side effects: it cannot have a cache key")

    def declare(fn: Callable[..., Value]) -> Operation:
        first = next(iter(inspect.signature(fn).parameters.values()))
        params = typing.get_type_hints(fn)[first.name]
        return Operation(
            name=name,
            description=inspect.cleandoc(fn.__doc__ or ""),
            params=params,
            output=output,
            fn=fn,
            cleanup=cleanup,
            retry=retry,
            cache_key=cache_key,
            side_effects=side_effects,
            cache_version=cache_version,
        )

    return declare


class Catalog:
    """The registry: operations by name, in a stable order."""

    def __init__(self, operations: Iterable[Operation]):
        self._by_name: dict[str, Operation] = {}
        for op in operations:
            if op.name in self._by_name:
                raise ValueError(f"operation {op.name!r} is registered twice")
            self._by_name[op.name] = op

    def get(self, name: str) -> Operation | None:
        return self._by_name.get(name)

    def __getitem__(self, name: str) -> Operation:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def describe(self) -> list[dict[str, Any]]:
        return [op.describe() for op in self._by_name.values()]
