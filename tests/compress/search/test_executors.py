"""The local executor survives a worker that dies: that trial fails, the next ones run."""

from __future__ import annotations

import os

import pytest

from edgecompress.compress.search.executors import LocalExecutor


def echo_or_die(spec: dict) -> dict:
    """A stand-in trial (top level: spawned workers import it) that can kill its own worker."""
    if spec.get("die"):
        os._exit(9)  # as the kernel's OOM killer would end it: no exception, no cleanup
    return {"number": spec["number"], "state": "complete"}


def test_local_executor_fails_the_dead_workers_trial_and_runs_the_next_when_a_worker_dies():
    executor = LocalExecutor(1, task=echo_or_die)
    try:
        dying = executor.submit({"number": 0, "die": True})
        with pytest.raises(Exception, match="terminated abruptly"):
            executor.result(dying)
        after = executor.submit({"number": 1})
        assert executor.result(after) == {"number": 1, "state": "complete"}
    finally:
        executor.close()
