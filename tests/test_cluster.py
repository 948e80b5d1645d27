"""Index runs on a real multi-node Ray cluster (issue 18): a head node and a worker node, each
its own raylet process on this machine (``ray.cluster_utils.Cluster``, as Ray's own tests
simulate several nodes), or the cluster .ci/run starts (``$SEARCHCLIP_TEST_RAY_ADDRESS``).

A cluster run must leave the catalog a local run leaves (same files, metadata, failures,
vectors within the precision's tolerance), survive a worker node's death, record a file a
worker cannot read like a local run does, and stop with one line when a node cannot see the
indexed folder at all.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from pictures import COCO_IMAGES, photo_folder

from searchclip import ClusterError, SearchEngine
from searchclip._catalog import Catalog

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
from ray.cluster_utils import Cluster  # noqa: E402

EXTERNAL = os.environ.get("SEARCHCLIP_TEST_RAY_ADDRESS")


@pytest.fixture(scope="module")
def cluster():
    """Two nodes, one CPU each; the test process is the driver, connected for the module."""
    if ray.is_initialized():
        ray.shutdown()
    if EXTERNAL:
        ray.init(address=EXTERNAL, log_to_driver=False)
        yield None, EXTERNAL
        ray.shutdown()
        return
    node = {"num_cpus": 1, "object_store_memory": 300_000_000}
    nodes = Cluster(initialize_head=True, head_node_args=node)
    worker = nodes.add_node(**node)
    nodes.wait_for_nodes()
    ray.init(address=nodes.address, log_to_driver=False)
    try:
        yield (nodes, worker), nodes.address
    finally:
        ray.shutdown()
        nodes.shutdown()


def _catalog_contents(index_dir: Path) -> dict:
    """What an index holds, path by path: record fields, vector, and the failure list."""
    with Catalog.open(index_dir / "catalog.sqlite") as catalog:
        model = catalog.model()
        records = catalog.files_under("/")
        vectors = catalog.vectors_by_path(sorted(records), model)
        failures = sorted((f.path, f.reason) for f in catalog.failures())
    rows = {
        path: (r.size, r.mtime_ns, r.content_hash, r.width, r.height, r.metadata, r.perceptual_hash)
        for path, r in records.items()
    }
    return {"rows": rows, "vectors": vectors, "failures": failures, "model": model.name}


def _same_catalog(cluster_index: Path, local_index: Path, tolerance: float) -> None:
    ours, theirs = _catalog_contents(cluster_index), _catalog_contents(local_index)
    assert ours["rows"] == theirs["rows"]
    assert ours["failures"] == theirs["failures"]
    assert ours["vectors"].keys() == theirs["vectors"].keys()
    for path, vector in ours["vectors"].items():
        assert float(np.dot(vector, theirs["vectors"][path])) >= 1 - tolerance, path


def _nodes_used() -> int:
    return sum(1 for node in ray.nodes() if node["Alive"])


def test_the_cluster_has_two_nodes(cluster):
    assert _nodes_used() >= 2


@pytest.mark.skipif(not COCO_IMAGES.is_dir(), reason="../shared/data is not beside the repo")
def test_a_cluster_run_of_real_photos_gives_the_catalog_a_local_run_gives(cluster, tmp_path, model):
    photos = tmp_path / "coco"
    shutil.copytree(COCO_IMAGES, photos)  # a copy inside the test's own folder: not committed
    for extra in sorted(photos.iterdir())[40:]:
        extra.unlink()
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    _, address = cluster
    with SearchEngine(tmp_path / "local", model=model, precision="fp32") as engine:
        local = engine.index(photos)
    with SearchEngine(tmp_path / "cluster", model=model, precision="fp32") as engine:
        on_cluster = engine.index(photos, ray_address=address)
        assert engine.search("a photo", k=3)  # the index answers queries as any other
    assert (on_cluster.new, on_cluster.failed, on_cluster.encoded) == (40, 1, 40)
    assert (local.new, local.failed) == (40, 1)
    _same_catalog(tmp_path / "cluster", tmp_path / "local", tolerance=1e-5)


def test_auto_precision_is_chosen_once_on_the_driver_and_kept_by_every_actor(
    cluster, tmp_path, model
):
    photo_folder(tmp_path / "photos", 70)
    _, address = cluster
    with SearchEngine(tmp_path / "cluster", model=model, batch_size=16) as engine:
        report = engine.index(tmp_path / "photos", ray_address=address)
        chosen = engine.precision
    assert report.precision_choice and report.encoded == 70
    with SearchEngine(tmp_path / "local", model=model, precision=chosen) as engine:
        engine.index(tmp_path / "photos")
    tolerance = 1e-5 if chosen == "fp32" else 2e-3
    _same_catalog(tmp_path / "cluster", tmp_path / "local", tolerance)


def test_a_second_cluster_run_reads_only_what_changed(cluster, tmp_path, fake_model):
    photos = tmp_path / "photos"
    paths = photo_folder(photos, 30)
    _, address = cluster
    with SearchEngine(tmp_path / "index", model=fake_model) as engine:
        engine.index(photos, ray_address=address)
        paths[0].rename(photos / "moved.png")  # same content: its vector is reused
        photo_folder(photos / "more", 5, start_seed=100)
        report = engine.index(photos, ray_address=address)
    assert (report.new, report.moved, report.encoded, report.unchanged) == (5, 1, 5, 29)


def test_an_on_disk_index_adds_its_shards_as_ray_tasks(cluster, tmp_path, fake_model, monkeypatch):
    from searchclip import _cluster
    from searchclip._vector_index import build_on_disk, load_index

    monkeypatch.setattr("searchclip._vector_index.choice.EXACT_MAX_VECTORS", 4)
    monkeypatch.setattr("searchclip._vector_index.choice.ON_DISK_MIN_VECTORS", 40)
    monkeypatch.setattr("searchclip._vector_index.ondisk_build.SHARD_VECTORS", 10)
    shards_on_ray = []
    real_runner = _cluster.ray_shard_runner

    def counted(address):
        run = real_runner(address)

        def counting(function, shared, jobs):
            for shard in run(function, shared, jobs):
                shards_on_ray.append(len(shard))
                yield shard

        return counting

    monkeypatch.setattr(_cluster, "ray_shard_runner", counted)
    photos = tmp_path / "photos"
    photo_folder(photos, 45)
    _, address = cluster
    with SearchEngine(tmp_path / "index", model=fake_model) as engine:
        engine.index(photos, ray_address=address)
        model = engine._model
        chunks = list(engine._catalog.vector_chunks(model))
        on_cluster = [h.path for h in engine.search_image(photos / "img004.png", k=10)]
    assert len(shards_on_ray) == 5  # 45 vectors, 10 a shard
    (vector_file,) = (tmp_path / "index").glob("vectors-*.faiss")
    index = load_index(vector_file, model.dim)
    here = build_on_disk(model.dim, iter(chunks), tmp_path, shard_vectors=10)
    queries = np.concatenate([vectors for _, vectors in chunks])
    assert np.array_equal(index.search(queries, 5)[1], here.search(queries, 5)[1])
    with SearchEngine(tmp_path / "local", model=fake_model) as engine:
        engine.index(photos)
        assert [h.path for h in engine.search_image(photos / "img004.png", k=10)] == on_cluster


def test_actors_get_the_known_contents_as_prefixes_and_a_shared_prefix_costs_a_decode(
    cluster, tmp_path, fake_model, monkeypatch
):
    from searchclip import _images as images
    from searchclip._cluster import pipeline
    from searchclip._cluster.worker import HashPrefixes

    digests = [images.content_hash(str(i).encode()) for i in range(1000)]
    known = HashPrefixes(digests[:500])
    assert len(known) == 500 and all(d in known for d in digests[:500])
    assert not any(d in known for d in digests[500:]) and "" not in known

    photos = tmp_path / "photos"
    paths = photo_folder(photos, 6)
    new_contents = [images.content_hash(p.read_bytes()) for p in paths]
    # As if every new photo's hash shared its first 64 bits with a known content's: the actors
    # skip decoding them, and the driver, finding no vector to copy, decodes them itself.
    monkeypatch.setattr(
        pipeline, "HashPrefixes", lambda hashes: HashPrefixes([*hashes, *new_contents])
    )
    _, address = cluster
    with SearchEngine(tmp_path / "cluster", model=fake_model) as engine:
        report = engine.index(photos, ray_address=address)
    assert (report.new, report.failed) == (6, 0)
    with SearchEngine(tmp_path / "local", model=fake_model) as engine:
        engine.index(photos)
    _same_catalog(tmp_path / "cluster", tmp_path / "local", tolerance=1e-6)


def test_a_file_a_worker_cannot_read_is_recorded_as_a_local_run_records_it(
    cluster, tmp_path, fake_model
):
    if os.geteuid() == 0:
        pytest.skip("root reads every file: a permission cannot make one unreadable")
    photos = tmp_path / "photos"
    paths = photo_folder(photos, 10)
    paths[3].chmod(0)
    _, address = cluster
    with SearchEngine(tmp_path / "index", model=fake_model) as engine:
        report = engine.index(photos, ray_address=address)
    assert report.failed == 1 and "ermission" in report.failures[0].reason


def test_a_file_gone_before_a_worker_reads_it_is_recorded_not_fatal(
    cluster, tmp_path, fake_model, monkeypatch
):
    """Root here: a file that vanishes between the scan and the worker's read is what a
    permission-denied file is to a worker, a file it cannot read."""
    photos = tmp_path / "photos"
    paths = photo_folder(photos, 10)
    _, address = cluster
    from searchclip import _ingest

    planned = _ingest._Run.plan

    def plan_then_lose_one(run, root):
        todo = planned(run, root)
        paths[4].unlink()
        return todo

    monkeypatch.setattr(_ingest._Run, "plan", plan_then_lose_one)
    with SearchEngine(tmp_path / "index", model=fake_model, precision="fp32") as engine:
        report = engine.index(photos, ray_address=address)
    assert (report.new, report.failed) == (9, 1)
    assert report.failures[0].path == str(paths[4])


def test_a_node_that_cannot_see_the_folder_stops_the_run_with_one_line(
    cluster, tmp_path, fake_model, monkeypatch
):
    photos = tmp_path / "photos"
    photo_folder(photos, 6)
    _, address = cluster
    from searchclip._cluster import pipeline

    # The workers are told to look for the folder at a path that no node has: what a worker
    # without the shared file system sees.
    original = pipeline.ClusterRun._dataset

    def elsewhere(run, ray_module, preparer, todo):
        return original(
            dataclasses.replace(run, root="/nonexistent/photos"), ray_module, preparer, todo
        )

    monkeypatch.setattr(pipeline.ClusterRun, "_dataset", elsewhere)
    with SearchEngine(tmp_path / "index", model=fake_model, precision="fp32") as engine:
        with pytest.raises(ClusterError, match=r"cannot read .+: every node must see the files"):
            engine.index(photos, ray_address=address)
        assert engine.info().files == 0  # nothing half-written


def test_a_model_a_worker_cannot_load_stops_the_run_with_one_line(
    cluster, tmp_path, fake_model, monkeypatch
):
    photo_folder(tmp_path / "photos", 6)
    _, address = cluster
    from searchclip._cluster import pipeline

    # What a worker without the model's directory meets: the name does not load there.
    original = pipeline.ClusterRun._dataset

    def without_the_model(run, ray_module, preparer, todo):
        moved = dataclasses.replace(run, model_name="/nowhere/model")
        return original(moved, ray_module, preparer, todo)

    monkeypatch.setattr(pipeline.ClusterRun, "_dataset", without_the_model)
    with SearchEngine(tmp_path / "index", model=fake_model, precision="fp32") as engine:
        with pytest.raises(
            ClusterError, match=r"the cluster run failed: .*nowhere/model"
        ) as caught:
            engine.index(tmp_path / "photos", ray_address=address)
        assert engine.info().files == 0
    assert "\n" not in str(caught.value)


def test_the_cli_indexes_on_the_cluster_and_says_so_in_one_line_when_there_is_none(
    cluster, tmp_path, fake_model
):
    photo_folder(tmp_path / "photos", 8)
    _, address = cluster
    env = {**os.environ, "SEARCHCLIP_INDEX": str(tmp_path / "index")}
    command = [sys.executable, "-m", "searchclip", "index", str(tmp_path / "photos")]
    done = subprocess.run(
        [*command, "--model", fake_model, "--precision", "fp32", "--ray", address],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "8 new" in done.stdout
    env["SEARCHCLIP_INDEX"] = str(tmp_path / "another")  # new: there is work to send
    missing = subprocess.run(
        [*command, "--model", fake_model, "--precision", "fp32", "--ray", "127.0.0.1:1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode == 1
    assert "Traceback" not in missing.stderr
    assert "cannot connect to a Ray cluster at 127.0.0.1:1" in missing.stderr


def test_killing_the_worker_node_mid_run_loses_nothing(cluster, tmp_path, fake_model):
    """Last in this file: the cluster has one node fewer afterwards."""
    nodes, address = cluster
    photos = tmp_path / "photos"
    photo_folder(photos, 120)
    killed = threading.Event()

    def kill_worker_once(progress):
        if progress.done == 20 and not killed.is_set():
            killed.set()
            threading.Thread(target=_kill_a_worker_node, args=(nodes,)).start()

    with SearchEngine(tmp_path / "index", model=fake_model, batch_size=8) as engine:
        try:
            first = engine.index(photos, ray_address=address, on_progress=kill_worker_once)
            finished = first.new
        except ClusterError:
            finished = engine.info().files  # what was committed before the failure stays
        second = engine.index(photos, ray_address=address)
    assert killed.is_set()
    assert finished + second.new == 120 and second.failed == 0
    with SearchEngine(tmp_path / "local", model=fake_model, batch_size=8) as engine:
        engine.index(photos)
    _same_catalog(tmp_path / "index", tmp_path / "local", tolerance=1e-6)


def _kill_a_worker_node(nodes) -> None:
    """Kill a node that is not the head: through ``Cluster`` when the test started it, else
    its raylet process (the node of a cluster ``ray start`` started)."""
    if nodes is not None:
        cluster_nodes, worker = nodes
        cluster_nodes.remove_node(worker)
        return
    import psutil

    worker = next(
        node
        for node in ray.nodes()
        if node["Alive"] and "node:__internal_head__" not in node["Resources"]
    )
    flag = f"--raylet_socket_name={worker['RayletSocketName']}"
    for process in psutil.process_iter(["cmdline"]):
        if flag in (process.info["cmdline"] or []):
            process.kill()
