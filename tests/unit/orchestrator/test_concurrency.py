"""ordered_map: input order, a bounded window over lazy inputs, not-started calls canceled."""

from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from orchestrator.concurrency import ordered_map, usable_cores


def test_results_come_in_input_order_each_with_its_input():
    finish_first_last = threading.Event()

    def square(value: int) -> int:
        if value == 0:
            finish_first_last.wait(timeout=10)
        elif value == 4:
            finish_first_last.set()
        return value * value

    with ThreadPoolExecutor(3) as pool:
        assert list(ordered_map(pool, square, range(5), window=5)) == [
            (0, 0),
            (1, 1),
            (2, 4),
            (3, 9),
            (4, 16),
        ]


def test_inputs_are_read_lazily_at_most_a_window_ahead():
    pulled: list[int] = []

    def inputs():
        for value in itertools.count():
            pulled.append(value)
            yield value

    with ThreadPoolExecutor(2) as pool:
        results = ordered_map(pool, str, inputs(), window=3)
        assert next(results) == (0, "0")
        assert pulled == [0, 1, 2]
        assert next(results) == (1, "1")
        assert pulled == [0, 1, 2, 3]
        results.close()


def test_an_error_cancels_the_calls_not_started():
    release = threading.Event()
    calls: list[int] = []

    def work(value: int) -> int:
        calls.append(value)
        if value == 0:
            raise ValueError("first fails")
        release.wait(timeout=10)  # value 1 holds the only thread until the error is seen
        return value

    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(ValueError, match="first fails"):
            list(ordered_map(pool, work, range(4), window=4))
        release.set()
    assert calls[0] == 0 and set(calls) <= {0, 1}


def test_usable_cores_is_at_least_one_and_at_most_the_machines():
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)
