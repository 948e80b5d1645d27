"""Index runs on a Ray cluster (the ``ray`` extra): decoding and encoding as a Ray Data
pipeline, everything else where a local run does it.

The driver (the process running ``searchclip index --ray``) scans, plans and commits, as in a
local run: the catalog stays the one source of truth and the one writer. Only the files that
need reading go to the cluster, as rows (path, size, mtime, the content hash the catalog has for
that path); a pool of actors (:mod:`.worker`), each holding the model once, reads, hashes,
decodes and encodes them, and the prepared files stream back (Ray Data's streaming executor
bounds what is in flight) to be committed batch by batch exactly as a local run commits them.
Interrupted anywhere, a run loses at most what was in flight, and the next run resumes.

Every node reads the files at the driver's paths (a shared file system, or an object store
mounted at the same path): a node that cannot see the indexed folder stops the run with one
line naming it. ``auto`` precision is decided on the driver, on the first batch that needs
encoding (as a local run decides it), before the cluster starts, so all actors encode at one
precision.

A rebuild of an on-disk index after a cluster run adds its shards as Ray tasks
(:mod:`.shards`), on the same cluster.
"""

from __future__ import annotations

from searchclip._cluster.pipeline import ClusterRun
from searchclip._cluster.shards import ray_shard_runner

__all__ = ["ClusterRun", "ray_shard_runner"]
