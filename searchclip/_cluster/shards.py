"""The shards of an on-disk index's build as Ray tasks (``ShardRunner``, see
:mod:`searchclip._vector_index.ondisk_build`): each adds its vectors to the trained, empty
index on whichever node Ray places it and returns its lists to the driver, which merges them.
Ray retries a task whose node died."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from searchclip._cluster.pipeline import connected
from searchclip._errors import ClusterError

TASK_RETRIES = 3


def ray_shard_runner(address: str) -> Callable[..., Iterator[np.ndarray]]:
    """A ShardRunner whose shards are Ray tasks on the cluster at ``address`` (as for
    :func:`searchclip._cluster.pipeline.connected`), as many at once as it has CPUs."""

    def run(
        function: Callable[..., np.ndarray], shared: Any, jobs: Iterable[tuple]
    ) -> Iterator[np.ndarray]:
        with connected(address) as ray:
            task = ray.remote(function).options(num_cpus=1, max_retries=TASK_RETRIES)
            try:
                shared_ref = ray.put(shared)  # sent once, not with every task
                at_once = max(1, int(ray.cluster_resources().get("CPU", 1)))
                pending: list = []
                for job in jobs:
                    if len(pending) >= at_once:
                        done, pending = ray.wait(pending, num_returns=1)
                        yield ray.get(done[0])
                    pending.append(task.remote(shared_ref, *(np.asarray(part) for part in job)))
                while pending:
                    done, pending = ray.wait(pending, num_returns=1)
                    yield ray.get(done[0])
            except ray.exceptions.RayError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                raise ClusterError(
                    f"building the index's shards on the cluster failed: {first}",
                    address=address,
                ) from None

    return run
