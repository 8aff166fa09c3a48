"""The base provider: batch files and parts, the batch walk, the meta's dp_type."""
from __future__ import annotations

import numpy as np
import pytest

from port.data import DataProvider, get_instance
from port.errors import UserError
from port.util import pickle


@pytest.fixture
def folder(tmp_path):
    pickle(tmp_path / "batches.meta", {"num_vis": 3, "label_names": ["a", "b"], "dp_type": "labeled"})
    for b in (1, 2, 10):
        pickle(tmp_path / f"data_batch_{b}", {"data": np.full((3, 2), b), "labels": [0, 1]})
    pickle(tmp_path / "data_batch_4.1", {"data": np.zeros((2, 5))})
    pickle(tmp_path / "data_batch_4.2", {"data": np.ones((3, 5))})
    (tmp_path / "notes.txt").write_text("ignored")
    return tmp_path


def test_batch_numbers_parts_and_the_walk(folder):
    assert DataProvider.get_batch_nums(folder) == [1, 2, 4, 10]
    assert DataProvider.get_num_batches(folder) == 4
    dp = get_instance(folder, None, init_epoch=5, init_batchnum=4, type="default")
    assert dp.batch_range == [1, 2, 4, 10] and dp.get_data_dims() == 3
    e, b, dic = dp.get_next_batch()
    assert (e, b) == (5, 4)
    np.testing.assert_array_equal(dic["data"], np.r_[np.zeros((2, 5)), np.ones((3, 5))])  # parts stacked
    assert [dp.get_next_batch()[:2] for _ in range(3)] == [(5, 10), (6, 1), (6, 2)]
    assert dp.get_next_batch_num() == 10
    dp.close()


def test_dp_type_from_the_meta(folder):
    dp = get_instance(folder, [1], type=None)
    assert type(dp).__name__ == "LabeledDataProvider" and dp.get_num_classes() == 2
    dp.close()
    pickle(folder / "batches.meta", {"num_vis": 3})
    with pytest.raises(UserError, match="no --data-provider given and the meta has no 'dp_type'"):
        get_instance(folder, [1], type=None)


def test_meta_errors(tmp_path):
    with pytest.raises(UserError, match="batches.meta: batches.meta does not exist"):
        get_instance(tmp_path, [1], type="cifar")
    pickle(tmp_path / "batches.meta", [1, 2])
    with pytest.raises(UserError, match="batches.meta: expected a dict, found list"):
        get_instance(tmp_path, [1], type="cifar")
    pickle(tmp_path / "batches.meta", {"num_vis": 3072, "data_mean": np.zeros(10)})
    pickle(tmp_path / "data_batch_1", {"data": np.zeros((3072, 1)), "labels": [0]})
    with pytest.raises(UserError, match="'data_mean' has 10 values; expected 3072"):
        get_instance(tmp_path, [1], type="cifar")
    with pytest.raises(UserError, match="no data_batch_<n> files and no batch range"):
        get_instance(_empty(tmp_path), None)


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    pickle(d / "batches.meta", {"num_vis": 1})
    return d
