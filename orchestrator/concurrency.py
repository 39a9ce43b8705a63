"""Thread helpers that know nothing of the work they run.

- `ordered_map`: a function over a pool, results in input order, a bounded
  number of calls submitted at once, inputs read lazily;
- `usable_cores`: how many threads can run Python at once for this process.

Operations use them for their thread pools (resize_image, model_inference).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


def ordered_map(
    pool: ThreadPoolExecutor, fn: Callable[[In], Out], inputs: Iterable[In], window: int
) -> Generator[tuple[In, Out], None, None]:
    """`fn` over `inputs` in `pool`, each input with its result, in input order; at most
    `window` calls are submitted (waiting or running) at once.

    Unlike `Executor.map` it reads `inputs` lazily, so memory stays flat however
    many inputs there are; on an error, or when the generator is closed early,
    the calls not yet started are canceled.
    """
    running: deque[tuple[In, Future[Out]]] = deque()
    try:
        for value in inputs:
            running.append((value, pool.submit(fn, value)))
            if len(running) >= window:
                done, future = running.popleft()
                yield done, future.result()
        while running:
            done, future = running.popleft()
            yield done, future.result()
    finally:
        for _, future in running:
            future.cancel()


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, which a container or `taskset` may
    narrow below the machine's count; the machine's count where there is no affinity."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
