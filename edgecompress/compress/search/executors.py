"""Where trials run: a local process pool (default) or Ray tasks (`.[ray]`), behind one shape.

    executor.submit(spec) -> handle;  executor.wait(handles, timeout) -> finished handles;
    executor.result(handle) -> the trial's result JSON;  executor.close()

Ray: trials become tasks with `num_cpus` = the CPUs one trial uses; `address` joins a running
cluster ("auto" or "ray://host:10001"), otherwise a local Ray instance starts and stops with the
search. Every worker must reach the search folder at the same path (a shared filesystem) and
have the same edgecompress installed; results come back as JSON.
"""

from __future__ import annotations

import os
from enum import StrEnum

from edgecompress.errors import UserError


class Executor(StrEnum):
    """Where trials run (the CLI's --executor choices)."""

    local = "local"  # a process pool on this host
    ray = "ray"  # Ray tasks, on a local instance or a cluster


EXECUTORS = tuple(kind.value for kind in Executor)


def _run_trial(spec: dict) -> dict:  # imported per trial, so `Executor` is cheap to import
    from edgecompress.compress.search.trial import run_trial

    return run_trial(spec)


def host_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


class LocalExecutor:
    """A pool of `workers` processes (spawned: torch and forked threads do not mix). A worker that
    dies (killed, out of memory) breaks the pool: the trials it held fail, and the pool is
    rebuilt so the search goes on."""

    def __init__(self, workers: int, task=_run_trial):
        self.workers, self._task = workers, task
        self._pool = self._new_pool()

    def _new_pool(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, spec: dict):
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self._pool.submit(self._task, spec)
        except BrokenProcessPool:
            self._pool = self._new_pool()
            return self._pool.submit(self._task, spec)

    def wait(self, handles: list, timeout: float) -> list:
        from concurrent.futures import FIRST_COMPLETED, wait

        return list(wait(handles, timeout=timeout, return_when=FIRST_COMPLETED).done)

    def result(self, handle) -> dict:
        return handle.result()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class RayExecutor:
    """Trials as Ray tasks, each reserving `cpus` CPUs of the cluster."""

    def __init__(self, cpus: int, address: str | None):
        try:
            import ray
        except ImportError:
            raise UserError("executor 'ray' needs Ray: pip install 'edgecompress[ray]'") from None
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False, runtime_env={"env_vars": _worker_env()})
        total = max(1, int(ray.cluster_resources().get("CPU", 1)))
        cpus = min(cpus, total)  # a task asking more CPUs than the cluster has never starts
        self.workers = max(1, total // cpus)
        self._task = ray.remote(num_cpus=cpus, max_retries=0)(_run_trial)

    def submit(self, spec: dict):
        return self._task.remote(spec)

    def wait(self, handles: list, timeout: float) -> list:
        done, _ = self._ray.wait(handles, num_returns=1, timeout=timeout)
        return done

    def result(self, handle) -> dict:
        return self._ray.get(handle)

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()


def _worker_env() -> dict:
    """What every worker needs: no model-hub downloads, tokenizers single-threaded."""
    return {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def make_executor(kind: str, cpus: int, *, workers: int | None = None,
                  address: str | None = None):
    """The executor `kind` (one of EXECUTORS); `cpus` is what one trial uses."""
    if kind not in EXECUTORS:
        raise UserError(f"unknown executor {kind!r} (known: {', '.join(EXECUTORS)})")
    kind = Executor(kind).value
    if kind == "ray":
        return RayExecutor(cpus, address)
    if address:
        raise UserError("address is only for executor 'ray'")
    return LocalExecutor(workers or max(1, host_cpus() // min(cpus, host_cpus())))
