"""port.lr: the schedule syntax (named and positional) and the rates of lr.cu's schedules."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from port.lr import (LRS_PARSERS, DiscreteExpLRS, ExpLRS, JumpyDiscreteExpLRS, LearningRateSchedule,
                     LinearLRS, ParamParser, TanhLRS, make_schedule, parse_schedule)


# --- syntax -----------------------------------------------------------------------------------

@pytest.mark.parametrize("positional, named", [
    ("dexp[250,0,4]", "dexp[tgtFactor=250,noiseStdev=0,numSteps=4]"),
    ("dexp[10,0,2]", "dexp[tgtFactor=10,noiseStdev=0,numSteps=2]"),
    ("dexp[10,2]", "dexp[tgtFactor=10,noiseStdev=0,numSteps=2]"),
    ("dexp[500,5]", "dexp[tgtFactor=500,noiseStdev=0,numSteps=5]"),
    ("jdexp[1000,4]", "jdexp[tgtFactor=1000,noiseStdev=0,numSteps=4]"),
    ("jdexp[250,0,4]", "jdexp[tgtFactor=250,noiseStdev=0,numSteps=4]"),
    ("linear[1,1]", "linear[tgtFactor=1,noiseStdev=1]"),
    ("linear[1000]", "linear[tgtFactor=1000,noiseStdev=0]"),
    ("exp[1000]", "exp[tgtFactor=1000,noiseStdev=0]"),
    ("exp[ 1e3 , 0.5 ]", "exp[tgtFactor=1000,noiseStdev=0.5]"),
])
def test_positional_equals_named(positional, named):
    a, b = parse_schedule(positional), parse_schedule(named)
    assert a is not None and a == b


def test_named_form_as_the_original():
    assert parse_schedule("default") == {"type": "default", "params": {}}
    assert parse_schedule("default[]") == {"type": "default", "params": {}}
    d = parse_schedule("DEXP [ tgtfactor = 250 , noisestdev=0,NUMSTEPS=4]")
    assert d == {"type": "dexp", "params": {"tgtFactor": 250.0, "noiseStdev": 0.0, "numSteps": 4}}
    assert isinstance(d["params"]["numSteps"], int) and isinstance(d["params"]["tgtFactor"], float)


@pytest.mark.parametrize("bad", [
    "dexp",                                   # parameters required
    "dexp[tgtFactor=250,numSteps=4]",         # named form needs every parameter
    "dexp[numSteps=4,noiseStdev=0,tgtFactor=250]",  # ... in the declared order
    "dexp[250,0,4.5]",                        # numSteps is an int
    "dexp[1,2,3,4]", "exp[1,2,3]", "linear[]",
    "tanh[1,0]",                              # coded in lr.cu but not constructible
    "foo", "exp[tgtFactor=abc,noiseStdev=0]", "",
])
def test_bad_schedules_do_not_parse(bad):
    assert parse_schedule(bad) is None


def test_strict_parser_rejects_positional():
    strict = ParamParser("dexp[ftgtFactor,fnoiseStdev,inumSteps]")
    assert strict.parse("dexp[250,0,4]") is None
    assert strict.parse("dexp[tgtFactor=250,noiseStdev=0,numSteps=4]") is not None


# --- rates (hand-computed from the formulas of lr.cu) ----------------------------------------

def test_default_and_linear():
    assert LearningRateSchedule(0.01).get_rate(0.7) == 0.01
    lin = LinearLRS(0.01, 100, 0)
    assert lin.get_rate(0) == pytest.approx(0.01)
    assert lin.get_rate(0.25) == pytest.approx(0.01 * 0.75 + 0.0001 * 0.25)
    assert lin.get_rate(1) == pytest.approx(0.0001)


def test_exp_is_base_times_factor_power():
    e = ExpLRS(0.01, 100, 0)
    assert e.pow == pytest.approx(math.log(1e-4) / math.log(1e-2) - 1)
    for p in (0, 0.3, 0.5, 1):
        assert e.get_rate(p) == pytest.approx(0.01 * 100 ** -p, rel=1e-12)
    assert e.get_rate(0.5) == pytest.approx(0.001)
    assert ExpLRS(0.0, 10, 0).get_rate(0.5) == 0.0
    assert ExpLRS(1.0, 10, 0).get_rate(0.5) == 1.0  # log(base) = 0: C's pow(1, ±inf) = 1


def test_dexp_steps():
    d = DiscreteExpLRS(0.01, 1000, 0, 4)
    assert d.rates == pytest.approx([0.01, 0.001, 0.0001, 0.00001])
    expect = {0: 0.01, 0.25: 0.01, 0.26: 0.001, 0.5: 0.001, 0.51: 0.0001, 0.75: 0.0001,
              0.76: 0.00001, 1.0: 0.00001, 1.5: 0.00001}
    for p, r in expect.items():
        assert d.get_rate(p) == pytest.approx(r), p
    assert DiscreteExpLRS(0.02, 10, 0, 2).rates == pytest.approx([0.02, 0.002])
    assert DiscreteExpLRS(0.02, 10, 0, 1).rates == pytest.approx([0.002])


def test_jdexp_geometric_mean_rule():
    j = JumpyDiscreteExpLRS(0.01, 1000, 0, 4)
    assert j.get_rate(0.1) == pytest.approx(0.01)            # interval 0: never jumps
    assert j.get_rate(0.24) == pytest.approx(0.01)
    assert j.get_rate(0.3) == pytest.approx(0.001)           # before the middle of (0.25, 0.5]
    assert j.get_rate(0.4) == pytest.approx(math.sqrt(0.001 * 0.01))
    assert j.get_rate(0.7) == pytest.approx(math.sqrt(0.0001 * 0.001))
    assert j.get_rate(0.88) == pytest.approx(math.sqrt(0.00001 * 0.0001))
    assert j.get_rate(0.95) == pytest.approx(0.00001)         # p >= 0.9: no jump


def test_tanh_ends_at_base_and_final():
    t = TanhLRS(1.0, 3.0, 0)
    assert t.get_rate(0) == pytest.approx(1.0)
    assert t.get_rate(1) == pytest.approx(1 / 3)
    assert t.get_rate(0.5) == pytest.approx(2 / 3)


def test_noise_multiplies_by_one_plus_abs_normal_reproducibly():
    s = make_schedule("linear[1,0.5]", 0.01, rng=np.random.default_rng(7))
    z = np.random.default_rng(7).standard_normal(3)
    got = [s.get_rate(0.3) for _ in range(3)]
    assert got == pytest.approx([0.01 * (1 + 0.5 * abs(v)) for v in z])
    assert all(g >= 0.01 for g in got)


def test_make_schedule_registry():
    assert isinstance(make_schedule({"type": "default", "params": {}}, 0.1), LearningRateSchedule)
    d = make_schedule("dexp[tgtFactor=250,noiseStdev=0,numSteps=4]", 0.01)
    assert type(d) is DiscreteExpLRS and d.get_rate(1) == pytest.approx(0.01 / 250)
    assert type(make_schedule("jdexp[10,3]", 1.0)) is JumpyDiscreteExpLRS
    assert type(make_schedule("exp[10]", 1.0)) is ExpLRS
    with pytest.raises(ValueError, match="Unknown learning rate schedule type tanh"):
        make_schedule({"type": "tanh", "params": {}}, 0.1)
    with pytest.raises(ValueError, match="unable to parse"):
        make_schedule("dexp", 0.1)


# --- the release's params files ----------------------------------------------------------------

def test_every_released_schedule_parses(alexnet_2012):
    values = set()
    for f in sorted(alexnet_2012.glob("*/layer-params*.cfg")):
        for line in f.read_text(encoding="latin-1").splitlines():
            m = re.match(r"^\s*sched[WB]\s*=\s*(\S+)", line)
            if m:
                values.add(m.group(1))
    assert len(values) >= 10
    strict = [ParamParser(_typed_decl(p)) for p in LRS_PARSERS]  # positional=False: the original
    strict_ok = set()
    for v in values:
        assert parse_schedule(v) is not None, v
        if any(p.parse(v) for p in strict):
            strict_ok.add(v)
    # the released parser accepts exactly the named forms; every positional one is new here
    assert {v for v in values if "=" in v or "[" not in v} == strict_ok


def _typed_decl(p: ParamParser) -> str:
    if not p.param_names:
        return p.base_type
    letters = {int: "i", float: "f"}
    return p.base_type + "[" + ",".join(letters[t] + n for t, n in zip(p.param_types, p.param_names)) + "]"
