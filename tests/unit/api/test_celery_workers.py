"""The Celery workers' health source of /metrics: seen workers stay listed, down when silent."""

from __future__ import annotations

import asyncio
import time

import pytest

from api.celery_workers import KIND, CeleryWorkers
from stack import free_port


class Scripted(CeleryWorkers):
    """CeleryWorkers whose ping answers from a script instead of a broker."""

    def __init__(self, answers: list[list[str]]):
        super().__init__("memory://")
        self.answers = answers

    def ping(self) -> list[str]:
        return self.answers.pop(0)


def test_a_worker_that_stops_answering_is_listed_as_down() -> None:
    source = Scripted([["worker-1@a", "worker-2@b"], ["worker-2@b"], []])
    first, second, third = (asyncio.run(source.workers()) for _ in range(3))
    assert [(w.kind, w.name, w.up) for w in first] == [
        (KIND, "worker-1@a", True),
        (KIND, "worker-2@b", True),
    ]
    assert [(w.name, w.up) for w in second] == [("worker-1@a", False), ("worker-2@b", True)]
    assert [w.up for w in third] == [False, False]
    assert third[1].last_heartbeat is not None and third[1].last_heartbeat <= time.time()
    source.close()


@pytest.mark.timeout(60)
def test_an_unreachable_broker_means_no_answer_not_an_error() -> None:
    source = CeleryWorkers(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2)
    assert source.ping() == [] and source.unreachable
    source.close()
