"""The thread contract: one SearchEngine shared by threads for searching, one writer per index.

Searches run from several threads of one engine and from other processes while an index run
keeps adding photos; every answer must be whole (ranked, no duplicates, only indexed files),
and nothing process-wide (FAISS's thread count) may be changed by a query.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from pictures import photo_folder

from searchclip import IndexBusyError, SearchEngine

ROUNDS = 6  # index runs, each adding photos while the searches go on
PER_ROUND = 8
SEARCH_THREADS = 4


def _check_hits(hits, written: set[str], k: int) -> None:
    paths = [hit.path for hit in hits]
    assert len(paths) == len(set(paths)), "a hit came twice"
    assert set(paths) <= written, "a hit names a file that was never indexed"
    assert [hit.rank for hit in hits] == list(range(1, len(hits) + 1))
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)
    assert 0 < len(hits) <= k


_SEARCHER_PROCESS = textwrap.dedent(
    """
    import json, sys
    from searchclip import SearchEngine
    index_dir, stop_file = sys.argv[1], sys.argv[2]
    import os
    answers = []
    with SearchEngine(index_dir, create=False) as engine:
        while not os.path.exists(stop_file) or len(answers) < 3:
            hits = engine.search("a red photo", k=5)
            answers.append([[h.rank, h.score, h.path] for h in hits])
    print(json.dumps(answers))
    """
)


@pytest.mark.slow
def test_searches_from_threads_and_processes_while_an_index_run_writes(tmp_path, fake_model):
    import faiss

    photos = tmp_path / "photos"
    written = {str(p) for p in photo_folder(photos, PER_ROUND)}
    index_dir = tmp_path / "index"
    with SearchEngine(index_dir, model=fake_model, precision="fp32") as writer:
        writer.index(photos)
    threads_before = faiss.omp_get_max_threads()
    stop_file = tmp_path / "stop"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _SEARCHER_PROCESS, str(index_dir), str(stop_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    errors: list[BaseException] = []
    answered = [0] * SEARCH_THREADS
    done = threading.Event()
    with SearchEngine(index_dir, create=False) as shared:
        vector = shared.stored_vectors([sorted(written)[0]])[sorted(written)[0]]

        def search_until_done(slot: int) -> None:
            try:
                while not done.is_set() or answered[slot] < 3:
                    seen = set(written)  # files only get added: a snapshot taken before is safe
                    if slot % 2:
                        hits = shared.search("a red photo", k=5)
                    else:
                        hits = shared.search_vector(np.asarray(vector), k=5)
                    _check_hits(hits, seen | set(written), 5)
                    answered[slot] += 1
            except BaseException as exc:  # reported below, with the others
                errors.append(exc)

        searchers = [
            threading.Thread(target=search_until_done, args=(slot,))
            for slot in range(SEARCH_THREADS)
        ]
        for thread in searchers:
            thread.start()
        try:
            for round_number in range(1, ROUNDS + 1):
                new = photo_folder(photos / f"round-{round_number}", PER_ROUND, round_number * 100)
                written.update(str(p) for p in new)
                # The one writer: the shared engine itself runs the index, in this thread.
                report = shared.index(photos)
                assert report.new == PER_ROUND
        finally:
            done.set()
            for thread in searchers:
                thread.join(timeout=120)
    stop_file.touch()
    outputs = [process.communicate(timeout=120) for process in processes]
    assert not errors, errors[:3]
    assert all(count >= 3 for count in answered)
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        for answer in json.loads(out):
            assert len({path for _, _, path in answer}) == len(answer)
            assert {path for _, _, path in answer} <= written
    assert faiss.omp_get_max_threads() == threads_before  # no query left FAISS changed
    with SearchEngine(index_dir, create=False) as engine:
        assert engine.info().files == len(written)


def test_a_second_writer_is_refused_while_one_runs(tmp_path, fake_model):
    photos = tmp_path / "photos"
    photo_folder(photos, 4)
    index_dir = tmp_path / "index"
    with SearchEngine(index_dir, model=fake_model, precision="fp32") as engine:
        engine.index(photos)
    with SearchEngine(index_dir, create=False) as first, SearchEngine(index_dir) as second:
        with first._directory.write_lock(), pytest.raises(IndexBusyError) as raised:
            second.index(photos)
        assert raised.value.index_dir == str(index_dir)


def test_a_search_writes_nothing_in_the_index_directory(tmp_path, fake_model):
    photos = tmp_path / "photos"
    photo_folder(photos, 4)
    index_dir = tmp_path / "index"
    with SearchEngine(index_dir, model=fake_model, precision="fp32") as engine:
        engine.index(photos)
    for vector_file in index_dir.glob("vectors-*.faiss"):
        vector_file.unlink()  # a missing vector file: a search must answer without writing one
    stale = index_dir / "vectors-0.faiss"
    stale.write_bytes(b"stale")
    before = _listing(index_dir)
    with SearchEngine(index_dir, create=False) as engine:
        assert len(engine.search("a photo", k=3)) == 3
        assert engine.stored_vectors([str(photos / "nothing.png")]) == {}
    assert _listing(index_dir) == before


def _listing(directory: Path) -> dict[str, bytes]:
    # the catalog's WAL files change on any open; what matters is the vector files and exports
    return {
        p.name: p.read_bytes()
        for p in directory.iterdir()
        if p.is_file() and not p.name.startswith("catalog.sqlite")
    }
