"""The executor contract: submit jobs under a key, collect the ones that finished (in finishing order).

An executor never interprets a job: it runs ``fn(*args)`` somewhere and hands back an :class:`Outcome`
(the value, or the error and whether the worker died). The search loop and the fleet profiler decide what a
failure means.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class Outcome:
    """What became of one job: ``value`` when ``ok``; else ``error`` (text) and ``worker_died``."""

    key: Any
    ok: bool
    value: Any = None
    error: str = ""
    worker_died: bool = False
    attempts: int = 1


class Executor(abc.ABC):
    """Runs jobs; ``workers`` is how many may run at once."""

    name = "executor"

    def __init__(self, workers: int = 1, retries: int = 2) -> None:
        self.workers = max(1, int(workers))
        self.retries = max(0, int(retries))

    @abc.abstractmethod
    def submit(
        self, key: Any, fn: Callable[..., Any], *args: Any, resources: Mapping[str, float] | None = None
    ) -> None:
        """Start ``fn(*args)``; ``resources`` (Ray custom resources, e.g. ``{"jetson-orin": 1}``) pins it."""

    @abc.abstractmethod
    def wait(self, timeout: float | None = None) -> list[Outcome]:
        """Block until at least one submitted job has finished (or ``timeout`` s); return those finished."""

    @property
    @abc.abstractmethod
    def in_flight(self) -> int: ...

    def put(self, obj: Any) -> Any:
        """Share a large argument once (Ray: the object store); locally it is the object itself."""
        return obj

    def shutdown(self) -> None:  # noqa: B027 - optional hook
        """Release workers (a no-op for the local executor)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


class LocalExecutor(Executor):
    """Runs each job in this process when it is submitted. With ``workers`` N the loop still asks N at a
    time, and runs them one after another: the reference a synchronous Ray run must reproduce exactly.

    A job that raises is reported failed with the error (there is no worker to die, so nothing is retried).
    """

    name = "local"

    def __init__(self, workers: int = 1, retries: int = 0) -> None:
        super().__init__(workers, retries)
        self._done: list[Outcome] = []

    def submit(
        self, key: Any, fn: Callable[..., Any], *args: Any, resources: Mapping[str, float] | None = None
    ) -> None:
        try:
            self._done.append(Outcome(key, True, fn(*args)))
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # a crashing objective becomes a failed trial, never a lost one
            self._done.append(Outcome(key, False, error=f"{type(exc).__name__}: {exc}"))

    def wait(self, timeout: float | None = None) -> list[Outcome]:
        done, self._done = self._done, []
        return done

    @property
    def in_flight(self) -> int:
        return len(self._done)


def make_executor(
    kind: str,
    *,
    workers: int = 1,
    address: str | None = None,
    retries: int = 2,
    resources: Mapping[str, float] | None = None,
) -> Executor:
    """``local`` or ``ray`` (``address``: an existing cluster, e.g. ``ray://head:10001`` or ``auto``;
    none starts a local one with ``workers`` CPUs)."""
    from hwnas.errors import InputError

    if kind == "local":
        return LocalExecutor(workers)
    if kind == "ray":
        from hwnas.distributed.ray_executor import RayExecutor

        return RayExecutor(workers=workers, address=address, retries=retries, resources=resources)
    raise InputError(f"unknown executor {kind!r}", hint="local or ray")
