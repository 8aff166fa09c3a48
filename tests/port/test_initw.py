"""port.initw (the twin of initw.py): init functions that copy matrices from a saved net of our
own, and the one line when the checkpoint the release names does not exist."""
from __future__ import annotations

import numpy as np
import pytest

from port import checkpoint, initw
from port.errors import ConfigError
from tests.port.cfgnets import BASE, PARAMS, edit, parse


def _saved_net(tmp_path):
    src = parse(tmp_path, BASE)
    d = tmp_path / "ConvNet__2026-01-01_00.00.00"
    d.mkdir()
    checkpoint.save(d / "3.7", {"model_state": {"layers": src}})
    return src, d


def test_makew_makeb_copy_from_a_checkpoint_of_our_own(tmp_path):
    src, save_dir = _saved_net(tmp_path)
    text = edit(BASE, "conv1", "initW=0.01", "initW=0.01\ninitWFunc=initw.makew(conv1)\ninitBFunc=initw.makeb(conv1)")
    text = edit(text, "fc10", "initW=0.01", "initW=0.01\ninitWFunc=initw.makew(fc10)")
    L = parse(tmp_path, text, PARAMS, options={"initw_source": str(save_dir), "seed": 5})
    assert np.array_equal(L["conv1"]["weights"][0], src["conv1"]["weights"][0])
    assert np.array_equal(L["conv1"]["biases"], src["conv1"]["biases"])
    assert np.array_equal(L["fc10"]["weights"][0], src["fc10"]["weights"][0])
    fresh = parse(tmp_path, BASE, PARAMS, options={"seed": 5})
    assert not np.array_equal(fresh["conv1"]["weights"][0], src["conv1"]["weights"][0])


def test_the_release_checkpoint_is_named_in_one_line(tmp_path):
    text = edit(BASE, "conv1", "initW=0.01", "initW=0.01\ninitWFunc=initw.makew(conv1a)")
    with pytest.raises(ConfigError) as e:
        parse(tmp_path, text)
    msg = str(e.value)
    assert "\n" not in msg and e.value.section == "conv1" and e.value.key == "initWFunc"
    assert initw.SOURCE in msg and "never published" in msg


def test_source_layer_must_exist_and_match(tmp_path):
    _, save_dir = _saved_net(tmp_path)
    for func, pattern in [("initw.makew(nosuch)", "no layer 'nosuch'"),
                          ("initw.makew(fc10)", "wrong shape")]:
        text = edit(BASE, "conv1", "initW=0.01", f"initW=0.01\ninitWFunc={func}")
        with pytest.raises(ConfigError, match=pattern):
            parse(tmp_path, text, PARAMS, options={"initw_source": str(save_dir)})
    with pytest.raises(ConfigError, match="does not exist"):
        parse(tmp_path, edit(BASE, "conv1", "initW=0.01", "initW=0.01\ninitWFunc=initw.makew(conv1)"),
              PARAMS, options={"initw_source": str(tmp_path / "missing")})
