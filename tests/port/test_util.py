"""port.util: the restricted unpickler, the atomic pickle writer and the batch-name sort key."""
from __future__ import annotations

import gzip
import io
import pickle as std_pickle
import zipfile

import numpy as np
import pytest

from port.errors import UserError
from port.util import alphanum_key, pickle, unpickle


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_round_trip_arrays_and_containers(tmp_path, protocol):
    obj = {"data": np.arange(12, dtype=np.float32).reshape(3, 4), "labels": [1, 2, 3],
           "names": ("a", b"raw"), "s": np.float32(2.5), "set": {1, 2}}
    path = tmp_path / "b"
    with open(path, "wb") as f:
        std_pickle.dump(obj, f, protocol=protocol)
    got = unpickle(path)
    assert got["data"].dtype == np.float32 and np.array_equal(got["data"], obj["data"])
    assert got["labels"] == [1, 2, 3] and got["names"] == ("a", b"raw")
    assert got["s"] == np.float32(2.5) and got["set"] == {1, 2}


def test_refuses_arbitrary_callables(tmp_path):
    class Evil:
        def __reduce__(self):
            import os
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil"
    path.write_bytes(std_pickle.dumps({"data": Evil()}))
    with pytest.raises(UserError, match=r"evil: refusing to load '(posix|os)\.system'"):
        unpickle(path)


def test_python2_meta_of_the_subset(cifar_subset):
    meta = unpickle(cifar_subset / "batches.meta")
    assert meta["label_names"][:3] == ["airplane", "automobile", "bird"]
    assert meta["num_vis"] == 3072


def test_gzip_and_zip_wrappers(tmp_path):
    payload = std_pickle.dumps({"x": np.ones(3)})
    (tmp_path / "g").write_bytes(gzip.compress(payload))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("data", payload)
    (tmp_path / "z").write_bytes(buf.getvalue())
    assert np.array_equal(unpickle(tmp_path / "g")["x"], np.ones(3))
    assert np.array_equal(unpickle(tmp_path / "z")["x"], np.ones(3))


def test_missing_and_truncated_files(tmp_path):
    with pytest.raises(UserError, match="nothere: batch 3 does not exist"):
        unpickle(tmp_path / "nothere", "batch 3")
    good = std_pickle.dumps({"data": np.zeros((3072, 10), np.uint8)})
    (tmp_path / "cut").write_bytes(good[: len(good) // 2])
    with pytest.raises(UserError, match="cut: batch 1 is not a readable batch pickle"):
        unpickle(tmp_path / "cut", "batch 1")


def test_pickle_is_atomic_and_readable(tmp_path):
    pickle(tmp_path / "sub" / "m", {"a": np.eye(2)})
    assert np.array_equal(unpickle(tmp_path / "sub" / "m")["a"], np.eye(2))
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["m"]  # no temp file left


def test_alphanum_key():
    assert sorted(["data_batch_10", "data_batch_9", "data_batch_1"], key=alphanum_key) == \
        ["data_batch_1", "data_batch_9", "data_batch_10"]


def test_atomic_writes_get_the_mode_of_a_plain_open(tmp_path):
    import os

    from port.util import _UMASK, atomic_write_bytes

    atomic_write_bytes(tmp_path / "f.bin", lambda f: f.write(b"x"))
    assert (tmp_path / "f.bin").read_bytes() == b"x"
    assert os.stat(tmp_path / "f.bin").st_mode & 0o777 == 0o666 & ~_UMASK
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
