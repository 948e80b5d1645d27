"""The driver side of a cluster run: connecting to Ray, and the Ray Data pipeline that prepares
a run's planned files on the cluster (see the package docstring)."""

from __future__ import annotations

import logging
import math
import os
import pickle
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from searchclip._cluster.worker import (
    KNOWN_HASH,
    MTIME,
    PATH,
    PREPARED,
    SIZE,
    UNREADABLE_ON,
    FileEncoder,
    HashPrefixes,
)
from searchclip._encoders.precision import AUTO
from searchclip._errors import ClusterError, MissingExtraError
from searchclip._ingest_prepare import FilePreparer, Prepared, prepare_locally

LOCAL = "local"  # a Ray instance started for this run on this machine
RAY_EXTRA = "ray"
CONNECT_TIMEOUT_S = 10


def _import_ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingExtraError(
            "indexing on a Ray cluster needs Ray: pip install 'searchclip[ray]'", extra=RAY_EXTRA
        ) from None
    return ray


@contextmanager
def connected(address: str) -> Iterator:
    """Ray, connected to the cluster at ``address`` (``auto``: the one ``ray start`` runs on
    this machine, or ``$RAY_ADDRESS``; ``local``: a new one-machine instance; else HOST:PORT or
    ``ray://HOST:PORT``). A connection the caller made already is used as it is."""
    ray = _import_ray()
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # the run reports its own progress
    if ray.is_initialized():
        yield ray
        return
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    # Ray's C++ core logs, e.g. Ray Data's own actors' "constructor arguments in the object
    # store" notice (ray-project/ray#53727), would reach the user's terminal; Ray's errors
    # still raise here.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    try:
        if address == LOCAL:
            ray.init(include_dashboard=False, **quiet)
        else:
            _check_reachable(address)
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClusterError(
            f"cannot connect to a Ray cluster at {address}: {first}", address=address
        ) from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """Raise ConnectionError at once when nothing listens at a HOST:PORT ``address`` (Ray
    itself would retry for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {host}:{port} ({exc.strerror or exc})") from None


@dataclass(frozen=True)
class ClusterRun:
    """How one index run prepares its files on a cluster: ``prepare`` is ingest's
    PrepareFiles. ``precision`` tells the index's precision as of now (``auto`` until the
    first encoded batch decides it); ``device`` is the engine's request (``auto``: a GPU per
    actor where the cluster has GPUs)."""

    address: str
    root: str
    model_name: str
    device: str
    batch_size: int
    precision: Callable[[], str]
    cpus_per_actor: float = 1.0

    def prepare(self, preparer: FilePreparer, todo: list) -> Iterator[Prepared]:
        done = 0
        while self.precision() == AUTO and done < len(todo):  # decided on this machine first
            chunk = todo[done : done + self.batch_size]
            done += len(chunk)
            yield from prepare_locally(preparer, chunk)
        if done < len(todo):
            yield from self._on_cluster(preparer, todo[done:])

    def _on_cluster(self, preparer: FilePreparer, todo: list) -> Iterator[Prepared]:
        with connected(self.address) as ray:
            records = {stat.path: record for stat, record in todo}
            dataset = self._dataset(ray, preparer, todo)
            try:
                for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                    for blob, node in zip(batch[PREPARED], batch[UNREADABLE_ON], strict=True):
                        if node:
                            raise ClusterError(
                                f"the Ray worker on {node} cannot read {self.root}: every node "
                                "must see the files at the same path (a shared file system)",
                                address=self.address,
                                node=str(node),
                            )
                        item = pickle.loads(blob)
                        yield replace(item, record=records[item.stat.path])
            except ray.exceptions.RayError as exc:
                raise ClusterError(
                    f"the cluster run failed: {_first_line(exc)}", address=self.address
                ) from None

    def _dataset(self, ray, preparer: FilePreparer, todo: list):
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0)) if self.device in ("auto", "cuda") else 0
        actors = gpus or max(1, int(resources.get("CPU", 1) // self.cpus_per_actor))
        rows = [
            {
                PATH: stat.path,
                SIZE: stat.size,
                MTIME: stat.mtime_ns,
                KNOWN_HASH: record.content_hash if record else "",
            }
            for stat, record in todo
        ]
        blocks = max(1, math.ceil(len(rows) / self.batch_size))
        # One decoding thread a CPU of the actor's (its encoder keeps to Ray's OMP_NUM_THREADS);
        # a GPU actor decodes with the run's own thread count.
        options = preparer.options
        if not gpus:
            options = replace(options, workers=max(1, int(self.cpus_per_actor)))
        dataset = ray.data.from_items(rows, override_num_blocks=blocks)
        return dataset.map_batches(
            FileEncoder,
            fn_constructor_kwargs={
                "model_name": self.model_name,
                "precision": self.precision(),
                "device": "cuda" if gpus else "cpu",
                "batch_size": self.batch_size,
                "options": options,
                "reusable": HashPrefixes(preparer.reusable),
                "root": self.root,
            },
            batch_size=self.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
            num_cpus=self.cpus_per_actor,
            num_gpus=1 if gpus else 0,
        )


def _first_line(exc: BaseException) -> str:
    """The message of the error a Ray worker raised, without Ray's traceback."""
    cause = getattr(exc, "cause", None)
    text = str(cause if cause is not None else exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(exc).__name__
