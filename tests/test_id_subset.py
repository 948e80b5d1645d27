"""IdSubset: a metadata filter's result, answered without making its id array where it can."""

import numpy as np
import pytest

from searchclip._id_subset import IdSubset


@pytest.mark.parametrize(
    "universe",
    [np.arange(5, 105, dtype=np.int64), np.array([1, 4, 9, 10, 11, 30, 31, 99], dtype=np.int64)],
    ids=["dense", "sparse"],
)
def test_every_answer_agrees_with_the_plain_id_array(universe):
    rng = np.random.default_rng(0)
    keep = rng.random(len(universe)) < 0.4
    subset, expected = IdSubset(universe, keep), universe[keep]
    assert len(subset) == len(expected)
    assert np.array_equal(subset.ids, expected)
    probe = np.array([[-1, 0, *universe[:3]], [*universe[-3:], 1000, 7]])
    assert np.array_equal(subset.contains(probe), np.isin(probe, expected))
    mask = subset.member_mask(int(universe[-1]) + 1)
    assert np.array_equal(np.flatnonzero(mask), expected)
    assert subset.largest() == expected[-1]
    sample = subset.sample(2)
    assert 1 <= len(sample) <= len(expected) and np.isin(sample, expected).all()
    assert np.array_equal(subset.sample(10**6), expected)  # fewer than asked: every one


def test_a_subset_without_a_mask_holds_every_id_and_an_empty_one_none():
    universe = np.array([3, 8, 20], dtype=np.int64)
    whole = IdSubset(universe)
    assert (len(whole), whole.largest()) == (3, 20) and whole.ids is universe
    empty = IdSubset(universe, np.zeros(3, bool))
    assert (len(empty), empty.largest(), empty.ids.tolist()) == (0, -1, [])
    assert not IdSubset(np.empty(0, np.int64)).contains(np.array([1])).any()
