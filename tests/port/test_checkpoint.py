"""port.checkpoint: round trip, checksums, atomic replace, and the restricted legacy unpickler."""
from __future__ import annotations

import os
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest

from port import checkpoint
from port.errors import UserError


def _dic(rng):
    w = rng.standard_normal((12, 5)).astype(np.float32)
    return {
        "model_state": {
            "layers": {
                "conv1": {"name": "conv1", "type": "conv", "weights": [w], "weightsInc": [np.zeros_like(w)],
                          "biases": rng.standard_normal((5, 1)).astype(np.float32),
                          "biasesInc": np.zeros((5, 1), np.float32), "filterConns": [None],
                          "epsW": [0.001], "neuron": {"type": "relu", "params": {}}},
                "fc10": {"name": "fc10", "weights": [rng.standard_normal((3, 10)).astype(np.float64)],
                         "outputs": 10, "dropout": np.float32(0.5)},
            },
            "train_outputs": [({"logprob": [1.5, 0.75]}, 128)],
            "test_outputs": [],
            "epoch": 3, "batchnum": 2,
            "rng": np.random.default_rng(7).bit_generator.state,
        },
        "op": {"train_batch_range": {"value": [1, 2, 3], "value_given": True},
               "gpu": {"value": None, "value_given": False}, "nan": {"value": float("inf"), "value_given": 0},
               "weird": {"value": {3: "int key", "__x": 1}, "value_given": 1}},
    }


def _assert_same(a, b):
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    else:
        assert a == b


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_is_exact(tmp_path, compress):
    d = _dic(np.random.default_rng(0))
    checkpoint.save(tmp_path / "3.2", d, compress=compress)
    back = checkpoint.load(tmp_path / "3.2")
    _assert_same(d, back)
    g = np.random.default_rng()
    g.bit_generator.state = back["model_state"]["rng"]
    assert g.integers(1 << 62) == np.random.default_rng(7).integers(1 << 62)
    assert os.listdir(tmp_path) == ["3.2"]  # no temp file left behind


def test_directory_resolves_to_newest_by_number(tmp_path):
    for name in ("1.9", "2.10", "2.2", ".2.11.abc.tmp", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert checkpoint.resolve(tmp_path).name == "2.10"
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["1.9", "2.2", "2.10"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no checkpoint files"):
        checkpoint.resolve(tmp_path / "empty")


def test_missing_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        checkpoint.load(tmp_path / "nope")


def test_flipped_byte_fails_the_checksum(tmp_path):
    p = tmp_path / "1.1"
    checkpoint.save(p, {"model_state": {"w": np.arange(1000, dtype=np.float32)}, "op": {}})
    raw = bytearray(p.read_bytes())
    with zipfile.ZipFile(p) as z:
        info = z.getinfo("arrays/0.npy")
    pos = info.header_offset + 30 + len(info.filename) + len(info.extra) + 400  # inside the array data
    raw[pos] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(UserError, match=r"1\.1.*(checksum|corrupt)"):
        checkpoint.load(p)


def test_truncated_checkpoint_is_a_user_error(tmp_path):
    p = tmp_path / "1.1"
    checkpoint.save(p, {"model_state": {"w": np.arange(1000, dtype=np.float32)}, "op": {}})
    p.write_bytes(p.read_bytes()[:500])
    with pytest.raises(UserError, match=r"1\.1"):
        checkpoint.load(p)


def test_failed_write_keeps_the_previous_file(tmp_path):
    p = tmp_path / "1.1"
    checkpoint.save(p, {"a": np.ones(3)})
    with pytest.raises(TypeError, match="cannot hold"):
        checkpoint.save(p, {"a": object()})
    with pytest.raises(TypeError, match="object array"):
        checkpoint.save(p, {"a": np.array([None, 1], dtype=object)})
    assert np.array_equal(checkpoint.load(p)["a"], np.ones(3))
    assert os.listdir(tmp_path) == ["1.1"]


# ------------------------------------------------------------------------------- legacy pickles

def fake_options_module():
    """A module named ``options`` whose classes pickle as the original's did (options.Option ...)."""
    mod = types.ModuleType("options")

    class Option:
        pass

    class OptionsParser:
        pass

    class StringOptionParser:
        pass

    for cls in (Option, OptionsParser, StringOptionParser):
        cls.__module__ = "options"
        cls.__qualname__ = cls.__name__
        setattr(mod, cls.__name__, cls)
    return mod


def test_legacy_pickle_loads_only_when_trusted(tmp_path, monkeypatch):
    mod = fake_options_module()
    monkeypatch.setitem(sys.modules, "options", mod)
    op = mod.OptionsParser()
    o = mod.Option()
    o.name, o.value, o.value_given, o.parser = "layer_def", "layers.cfg", True, mod.StringOptionParser
    r = mod.Option()
    r.name, r.value, r.value_given = "train_batch_range", [1, 2, 3], True
    op.options = {"layer_def": o, "train_batch_range": r}
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    dic = {"model_state": {"layers": {"fc": {"weights": [w], "name": "fc"}}, "epoch": 2, "batchnum": 5,
                           "train_outputs": [({"logprob": [0.1]}, 10)], "test_outputs": []},
           "op": op}
    p = tmp_path / "2.5"
    p.write_bytes(pickle.dumps(dic, protocol=2))  # protocol 2: builtins spelled __builtin__, as py2
    assert b"options\nOptionsParser" in p.read_bytes()
    with pytest.raises(UserError, match="--trust-pickle"):
        checkpoint.load(p)
    back = checkpoint.load(p, trust_pickle=True)
    assert np.array_equal(back["model_state"]["layers"]["fc"]["weights"][0], w)
    assert back["model_state"]["epoch"] == 2
    assert back["op"] == {"layer_def": {"value": "layers.cfg", "value_given": True},
                          "train_batch_range": {"value": [1, 2, 3], "value_given": True}}


def _py2_str(s: str) -> bytes:
    b = s.encode("latin1")
    return b"U" + bytes([len(b)]) + b  # SHORT_BINSTRING: a Python 2 str


def test_hand_written_python2_opcodes(tmp_path):
    """Old-style instances (OBJ opcode), SHORT_BINSTRING keys, __builtin__ globals: what py2 wrote."""
    option = (b"(coptions\nOption\no}(" + _py2_str("value") + _py2_str("80sec.cfg")
              + _py2_str("value_given") + b"\x88ub")                      # Option(); BUILD {...}
    parser = b"(coptions\nOptionsParser\no}(" + _py2_str("options") + b"}(" + _py2_str("layer_def") \
        + option + b"uub"
    model_state = (b"}(" + _py2_str("epoch") + b"K\x07" + _py2_str("tags") + b"c__builtin__\nset\n]("
                   + _py2_str("a") + b"e\x85R" + b"u")
    blob = b"\x80\x02}(" + _py2_str("model_state") + model_state + _py2_str("op") + parser + b"u."
    p = tmp_path / "7.1"
    p.write_bytes(blob)
    back = checkpoint.load(p, trust_pickle=True)
    assert back["model_state"] == {"epoch": 7, "tags": {"a"}}
    assert back["op"] == {"layer_def": {"value": "80sec.cfg", "value_given": True}}


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "1.1"
    p.write_bytes(pickle.dumps({"model_state": _Evil(marker), "op": None}, protocol=2))
    assert b"system" in p.read_bytes()
    with pytest.raises(UserError, match=r"refused global (posix|os|nt)\.system"):
        checkpoint.load(p, trust_pickle=True)
    assert not marker.exists()
    with pytest.raises(UserError, match="--trust-pickle"):
        checkpoint.load(p)
    assert not marker.exists()


def test_legacy_zip_and_gzip_variants(tmp_path):
    import gzip
    dic = {"model_state": {"epoch": 1}, "op": None}
    z = tmp_path / "1.1"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("data", pickle.dumps(dic, protocol=2))
    g = tmp_path / "1.2"
    g.write_bytes(gzip.compress(pickle.dumps(dic, protocol=2)))
    for p in (z, g):
        with pytest.raises(UserError, match="--trust-pickle"):
            checkpoint.load(p)
        assert checkpoint.load(p, trust_pickle=True)["model_state"] == {"epoch": 1}


def test_shared_objects_stay_shared(tmp_path):
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    conv1 = {"name": "conv1", "weights": [w]}
    conv2 = {"name": "conv2", "weights": [w], "inputLayers": [conv1]}  # weightSource + inputLayers
    conv1["self"] = [conv1]                                              # a cycle
    checkpoint.save(tmp_path / "1.1", {"layers": {"conv1": conv1, "conv2": conv2}})
    back = checkpoint.load(tmp_path / "1.1")["layers"]
    assert back["conv2"]["inputLayers"][0] is back["conv1"]
    assert back["conv2"]["weights"][0] is back["conv1"]["weights"][0]
    assert back["conv1"]["self"][0] is back["conv1"]
    with zipfile.ZipFile(tmp_path / "1.1") as z:
        assert [n for n in z.namelist() if n.startswith("arrays/")] == ["arrays/0.npy"]


def test_unreadable_checkpoint_is_a_user_error(tmp_path):
    (tmp_path / "1.1").mkdir()  # named like a checkpoint, but a folder: open() fails
    with pytest.raises(UserError, match=r"1\.1: checkpoint is a directory, not a regular file"):
        checkpoint.load(tmp_path)


def test_zip_without_the_format_member_is_a_user_error(tmp_path):
    import hashlib

    state = b"{}"
    with zipfile.ZipFile(tmp_path / "1.1", "w") as z:
        z.writestr("state.json", state)
        z.writestr("SHA256SUMS", f"{hashlib.sha256(state).hexdigest()}  state.json\n")
    with pytest.raises(UserError, match=r"1\.1: not a port checkpoint \(no format\.json"):
        checkpoint.load(tmp_path / "1.1")


# --- crafted checkpoints: valid checksums, hostile content --------------------------------------

def craft(path, state, arrays=(), members=(), fmt=None, method=zipfile.ZIP_STORED):
    """A zip laid out as save() lays it out, with correct SHA256SUMS over whatever it is given:
    ``state`` (JSON-able, or bytes), ``arrays`` (ndarrays or raw .npy bytes, member k = index k)."""
    import hashlib
    import io
    import json

    out = [("format.json", json.dumps(fmt or {"format": checkpoint.FORMAT_NAME,
                                               "version": checkpoint.FORMAT_VERSION}).encode()),
           ("state.json", state if isinstance(state, bytes) else json.dumps(state).encode())]
    for k, a in enumerate(arrays):
        if isinstance(a, np.ndarray):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, a, allow_pickle=a.dtype.hasobject)
            a = buf.getvalue()
        out.append((f"arrays/{k}.npy", a))
    out += list(members)
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in out:
            z.writestr(name, data)
        z.writestr("SHA256SUMS", "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in out))
    return path


def _npy_header(shape, descr="<f4"):
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


def _deep(n):
    return ("[" * n + "]" * n).encode()


CRAFTED = [
    ("missing ndarray", {"a": {"__ndarray__": 3}}, [], "refers to array 3, which the checkpoint does not hold"),
    ("ndarray index not int", {"a": {"__ndarray__": "0"}}, [np.zeros(2)], "has __ndarray__ '0', not an integer"),
    ("dangling ref", {"a": {"__ref__": 0}}, [], "refers to shared object 0, which comes nowhere before it"),
    ("extra tag keys", {"a": {"__ref__": 0, "x": 1}}, [], "is a __ref__ entry with keys"),
    ("bad items", {"a": {"__items__": [[1]]}}, [], "does not hold \\[key, value\\] pairs"),
    ("unhashable key", {"a": {"__items__": [[[1, 2], 3]]}}, [], "unhashable key list"),
    ("bad scalar", {"a": {"__npscalar__": "O", "value": 1}}, [], "is a scalar of type object"),
    ("unknown scalar", {"a": {"__npscalar__": "zz", "value": 1}}, [], "unknown scalar type 'zz'"),
    ("scalar value", {"a": {"__npscalar__": "<f4", "value": "x"}}, [], "is a scalar of type float32"),
    ("deep nesting", _deep(5000), [], "nests deeper than 200 levels"),
    ("deep but parses", _deep(300), [], "nests deeper than 200 levels"),
    ("object array", {"a": {"__ndarray__": 0}}, [np.array([{}, 1], dtype=object)], "holds object values"),
    ("huge shape", {"a": {"__ndarray__": 0}}, [_npy_header((1 << 40, 1 << 20))],
     r"claims shape \(1099511627776, 1048576\) of float32 \(4611686018427387904 bytes\), but holds 0 bytes"),
    ("short data", {"a": {"__ndarray__": 0}}, [_npy_header((10,)) + b"\0" * 8], r"but holds 8 bytes"),
    ("bad header", {"a": {"__ndarray__": 0}}, [b"\x93NUMPY\x01\x00\x04\x00{}}\n"], "bad .npy header"),
    ("record dtype", {"a": {"__ndarray__": 0}}, [np.zeros(2, dtype=[("x", "<f4")])],
     "holds \\[\\('x', '<f4'\\)\\] values"),
]


@pytest.mark.parametrize("name, state, arrays, pattern", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_crafted_content_with_valid_checksums_is_one_line(tmp_path, name, state, arrays, pattern):
    p = craft(tmp_path / "1.1", state, arrays)
    with pytest.raises(UserError, match=pattern) as e:
        checkpoint.load(p)
    assert "\n" not in str(e.value) and str(p) in str(e.value) and len(str(e.value)) < 500


def test_members_are_checked_against_the_zip_directory_before_inflating(tmp_path, monkeypatch):
    """The issue's 9 MB zip with an 8 GiB member: the claimed size is refused before any byte is
    inflated; here a real 64 MiB deflated member (64 KiB on disk) against a 16 MiB ceiling."""
    import tracemalloc

    zeros = np.zeros(16 << 20, dtype=np.float32)  # 64 MiB
    p = craft(tmp_path / "1.1", {"a": {"__ndarray__": 0}}, [zeros], method=zipfile.ZIP_DEFLATED)
    del zeros
    assert p.stat().st_size < 2 << 20
    monkeypatch.setattr(checkpoint, "memory_ceiling", lambda: 16 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(UserError, match=r"arrays/0\.npy would inflate to 67108992 bytes \(64.0 MiB\), "
                                            r"more than the 16777216 bytes \(16.0 MiB\) that can be read"):
            checkpoint.load(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak
    monkeypatch.setattr(checkpoint, "memory_ceiling", lambda: 1 << 40)
    monkeypatch.setattr(checkpoint, "MAX_JSON_BYTES", 1 << 20)  # 256 MiB in use
    p2 = craft(tmp_path / "2.1", b"{" + b" " * (2 << 20) + b"}", method=zipfile.ZIP_DEFLATED)
    with pytest.raises(UserError, match=r"state\.json would inflate to .* more than the 1048576 bytes"):
        checkpoint.load(p2)


def test_hashing_is_streamed_and_a_tampered_member_is_refused(tmp_path):
    d = _dic(np.random.default_rng(0))
    checkpoint.save(tmp_path / "3.2", d)
    raw = bytearray((tmp_path / "3.2").read_bytes())
    needle = np.asarray(d["model_state"]["layers"]["conv1"]["weights"][0]).tobytes()[:16]
    at = bytes(raw).index(needle)
    raw[at] ^= 1
    (tmp_path / "3.2").write_bytes(bytes(raw))
    with pytest.raises(UserError, match=r"checksum mismatch in member arrays/0\.npy|corrupt or truncated"):
        checkpoint.load(tmp_path / "3.2")


def _training(layers=None, **ms):
    return {"model_state": {"layers": {} if layers is None else layers, "epoch": 1, "batchnum": 1,
                            "train_outputs": [], "test_outputs": [], **ms}, "op": {}}


@pytest.mark.parametrize("dic, pattern", [
    ([], "no 'model_state' dict"),
    ({"model_state": []}, "no 'model_state' dict"),
    (_training(), "'layers'\\] is missing or empty; refusing to resume from an empty model"),
    (_training({"a": {"name": "b", "type": "fc"}}), "layer 'a' is not a layer dict"),
    (_training({"a": {"name": "a", "type": "fc"}}, epoch="1"), "'epoch'\\] is not an integer"),
    (_training({"a": {"name": "a", "type": "fc"}}, test_outputs=3), "'test_outputs'\\] is not a list"),
    ({**_training({"a": {"name": "a", "type": "fc"}}), "op": {"x": 1}}, "'op' is not a dict of"),
])
def test_training_checkpoint_top_level(dic, pattern):
    with pytest.raises(checkpoint.CorruptCheckpoint, match=pattern):
        checkpoint.check_training_checkpoint(dic, "ck")


def test_leftovers_of_an_interrupted_save_are_removed_by_the_next(tmp_path):
    d = _dic(np.random.default_rng(0))
    checkpoint.save(tmp_path / "1.1", d)
    left = [tmp_path / ".1.2.abc123.tmp", tmp_path / ".2.5.x_y.tmp"]
    for f in left:
        f.write_bytes(b"half a checkpoint")
    keep = [tmp_path / "notes.tmp", tmp_path / ".bashrc", tmp_path / "1.1"]
    keep[0].write_text("mine")
    keep[1].write_text("mine")
    checkpoint.save(tmp_path / "1.3", d)
    assert not any(f.exists() for f in left)
    assert all(f.exists() for f in keep)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["1.1", "1.3"]
