"""Jobs as Ray tasks (``pip install 'hwnas[distributed]'``; ``ray`` is imported here only).

Retries are Ray's own: a task whose worker process or node dies is resubmitted up to ``retries`` times
(``max_retries``, system failures only); an exception raised by the job itself is not retried, because
running a crashing trial again gives the same crash. When the retries are spent, the job's outcome says
``worker_died`` and the caller records it as failed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hwnas.distributed.executor import Executor, Outcome
from hwnas.errors import DeviceUnavailableError, InputError


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise InputError(
            "the Ray executor needs the ray package", hint="pip install 'hwnas[distributed]'"
        ) from exc
    return ray


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


class RayExecutor(Executor):
    """Submit jobs as Ray tasks, one CPU each; ``address`` joins a running cluster, none starts a local one
    with ``workers`` CPUs (and ``resources``, e.g. device names, for tests and single-node fleets)."""

    name = "ray"

    def __init__(
        self,
        workers: int = 1,
        address: str | None = None,
        retries: int = 2,
        resources: Mapping[str, float] | None = None,
        init: bool = True,
    ) -> None:
        super().__init__(workers, retries)
        ray = _ray()
        self.ray = ray
        self._started = False
        if init and not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                kwargs["address"] = address
            else:
                kwargs.update(num_cpus=self.workers, resources=dict(resources or {}))
            try:
                ray.init(**kwargs)
            except ConnectionError as exc:
                raise DeviceUnavailableError(
                    f"cannot reach the Ray cluster at {address}: {exc}",
                    hint="start it with `ray start --head` (see the README), or leave out --address",
                ) from exc
            self._started = True
        self._remote = ray.remote(num_cpus=1, max_retries=self.retries, retry_exceptions=False)(_call)
        self._refs: dict[Any, Any] = {}  # ObjectRef -> key

    def put(self, obj: Any) -> Any:
        return self.ray.put(obj)

    def submit(
        self, key: Any, fn: Callable[..., Any], *args: Any, resources: Mapping[str, float] | None = None
    ) -> None:
        task = self._remote.options(resources=dict(resources)) if resources else self._remote
        self._refs[task.remote(fn, *args)] = key

    def wait(self, timeout: float | None = None) -> list[Outcome]:
        if not self._refs:
            return []
        ready, _ = self.ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        if ready:  # collect everything else that is already done too, without waiting
            more, _ = (
                self.ray.wait(
                    [r for r in self._refs if r not in ready], num_returns=len(self._refs) - 1, timeout=0
                )
                if len(self._refs) > 1
                else ([], [])
            )
            ready = list(ready) + list(more)
        out = []
        exc_types = self.ray.exceptions
        for ref in ready:
            key = self._refs.pop(ref)
            try:
                out.append(Outcome(key, True, self.ray.get(ref)))
            except (exc_types.WorkerCrashedError, exc_types.NodeDiedError, exc_types.ActorDiedError) as exc:
                out.append(
                    Outcome(
                        key,
                        False,
                        error=f"worker died ({type(exc).__name__}) after {self.retries} retries",
                        worker_died=True,
                        attempts=self.retries + 1,
                    )
                )
            except exc_types.RayTaskError as exc:
                cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                out.append(Outcome(key, False, error=f"{type(cause).__name__}: {cause}"))
        return out

    @property
    def in_flight(self) -> int:
        return len(self._refs)

    def shutdown(self) -> None:
        for ref in list(self._refs):
            self.ray.cancel(ref, force=True)
        self._refs.clear()
        if self._started:
            self.ray.shutdown()
            self._started = False
