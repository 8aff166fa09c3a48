"""Learning-rate schedules: the twin of ``src/lr.cu`` and of the schedule syntax of ``layer.py``.

A schedule maps training progress p ∈ [0, 1] to a learning rate. The maximum rate is the base
rate ε (the ``epsW``/``epsB`` of the params file), the minimum is ε / tgtFactor; the schedules
interpolate between the two. The params file names a schedule per weight layer with the keys
``schedW`` and ``schedB``, e.g. ``schedW=dexp[tgtFactor=250,noiseStdev=0,numSteps=4]``; the layer
parser turns that string into the dict ``{'type': 'dexp', 'params': {...}}`` (:func:`parse_schedule`),
and the weights turn the dict plus a base rate into an object (:func:`make_schedule`).

Two syntaxes are accepted:

* the named one of the released parser: ``name`` or ``name[k=v,...]`` with *every* parameter
  named, in the declared order (case-insensitive names), e.g. ``exp[tgtFactor=1000,noiseStdev=0]``;
* the positional one of the later released params files (165-180 and the ``layers-cifar``
  ``noisylr`` files): ``name[v,...]`` in the order of the lr.cu constructors
  ``(tgtFactor, noiseStdev[, numSteps])``, where ``noiseStdev`` may be left out (then 0):
  ``dexp[250,0,4]`` = ``dexp[tgtFactor=250,noiseStdev=0,numSteps=4]``, ``dexp[10,2]`` = tgtFactor 10, numSteps 2,
  ``linear[1,1]`` = tgtFactor 1, noiseStdev 1 (the "noisy lr" runs), ``exp[1000]`` = tgtFactor 1000.

This module is not the weight update (see ``port/weights.py``); it only computes rates.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping

import numpy as np

__all__ = ["ParamParser", "LRS_PARSERS", "parse_first", "parse_schedule", "LearningRateSchedule",
           "LinearLRS", "ExpLRS", "TanhLRS", "DiscreteExpLRS", "JumpyDiscreteExpLRS", "SCHEDULES",
           "make_schedule"]


# ---------------------------------------------------------------------------------------------
# The schedule syntax
# ---------------------------------------------------------------------------------------------

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


class ParamParser:
    """Parses ``name`` or ``name[p1=v1,p2=v2,...]`` for one declared ``name[tp1,tp2,...]``.

    The declaration prefixes each parameter name with its type letter (``f`` float, ``i`` int),
    e.g. ``ParamParser('dexp[ftgtFactor,fnoiseStdev,inumSteps]')``. :meth:`parse` returns
    ``{'type': name, 'params': {name: value}}`` or None when the string is not this form.
    ``positional=True`` also accepts ``name[v1,v2,...]`` (see the module docstring).

    Ports: alexnet-2012/layer.py:68-92 ParamParser
    DIVERGES: positional values (``dexp[250,0,4]``) are accepted; the released parser rejects
    them, so every released params file from run 165 on could not be read by it.
    DIVERGES: a value that is not a number of the declared type makes parse return None (an
    error naming the key) instead of the original's uncaught ValueError traceback.
    """
    decl_regex = re.compile(r"^\s*(\w+)\s*(?:\[\s*(\w+(\s*,\w+)*)\s*\])?\s*$")
    param_converters = {"i": int, "f": float}

    def __init__(self, decl: str, positional: bool = False):
        m = self.decl_regex.match(decl)
        assert m is not None, decl
        self.base_type = m.group(1)
        typed = m.group(2).split(",") if m.group(2) is not None else []
        self.param_names = [p.strip()[1:] for p in typed]
        self.param_types = [self.param_converters[p.strip()[0]] for p in typed]
        assert len(set(self.param_names)) == len(self.param_names)
        self.positional = positional
        inner = ",".join(r"\s*%s\s*=\s*[^,\s=]+\s*" % p for p in self.param_names)
        self.named_regex = re.compile(r"^%s\s*(?:\[(%s)\])?\s*$" % (self.base_type, inner),
                                      flags=re.IGNORECASE)
        self.positional_regex = re.compile(
            r"^%s\s*\[\s*(%s(?:\s*,\s*%s)*)\s*\]\s*$" % (self.base_type, _NUMBER, _NUMBER),
            flags=re.IGNORECASE)

    def _typed(self, names, values) -> dict | None:
        try:
            conv = dict(zip(self.param_names, self.param_types))
            return {k: conv[k](v.strip()) for k, v in zip(names, values)}
        except ValueError:
            return None

    def parse(self, value: str) -> dict | None:
        m = self.named_regex.match(value)
        if m:
            if not self.param_names:  # ``default`` or ``default[]``
                return {"type": self.base_type, "params": {}}
            if m.group(1) is None:  # ``dexp`` without its parameters
                return None
            values = [kv.split("=")[1] for kv in m.group(1).split(",")]
            params = self._typed(self.param_names, values)
            return None if params is None else {"type": self.base_type, "params": params}
        if not self.positional or not self.param_names:
            return None
        m = self.positional_regex.match(value)
        if not m:
            return None
        values = [v.strip() for v in m.group(1).split(",")]
        names = list(self.param_names)
        if len(values) == len(names) - 1 and "noiseStdev" in names:
            names.remove("noiseStdev")
        if len(values) != len(names):
            return None
        params = self._typed(names, values)
        if params is None:
            return None
        if "noiseStdev" in self.param_names:
            params.setdefault("noiseStdev", 0.0)
        return {"type": self.base_type, "params": {k: params[k] for k in self.param_names}}


#: The schedule declarations of the released parser (layer.py's ``lrs_parsers``).
LRS_PARSERS = [ParamParser("default", positional=True),
               ParamParser("linear[ftgtFactor,fnoiseStdev]", positional=True),
               ParamParser("exp[ftgtFactor,fnoiseStdev]", positional=True),
               ParamParser("dexp[ftgtFactor,fnoiseStdev,inumSteps]", positional=True),
               ParamParser("jdexp[ftgtFactor,fnoiseStdev,inumSteps]", positional=True)]


def parse_first(parsers, value: str) -> dict | None:
    """The result of the first of ``parsers`` (objects with ``parse``) that accepts ``value``, or None."""
    for p in parsers:
        parsed = p.parse(value)
        if parsed:
            return parsed
    return None


def parse_schedule(value: str) -> dict | None:
    """The schedule dict ``{'type', 'params'}`` for a ``schedW``/``schedB`` value, or None.

    Ports: alexnet-2012/layer.py:158-172 parse_params
    """
    return parse_first(LRS_PARSERS, value)


# ---------------------------------------------------------------------------------------------
# The schedules
# ---------------------------------------------------------------------------------------------

class LearningRateSchedule:
    """The constant schedule ``default``, and the noise every schedule shares.

    ``get_rate(p)`` is ``_get_rate(p)``, multiplied by ``1 + noiseStdev·|N(0,1)|`` (a new draw on
    every call) when noiseStdev > 0.

    Ports: alexnet-2012/src/lr.cu:35-50 LearningRateSchedule::getRate
    DIVERGES: the normal draws come from the numpy Generator given (seeded by the caller, so runs
    repeat), not from the C library's ``random()`` through a Box-Muller pair
    (alexnet-2012/src/lr.cu:52-67).
    """

    def __init__(self, base_rate: float, noise_stdev: float = 0.0,
                 rng: np.random.Generator | None = None):
        self.base_rate = float(base_rate)
        self.noise_stdev = float(noise_stdev)
        self.rng = rng if rng is not None else np.random.default_rng()

    def _get_rate(self, progress: float) -> float:
        return self.base_rate

    def get_rate(self, progress: float) -> float:
        rate = self._get_rate(progress)
        if self.noise_stdev > 0:
            rate *= 1.0 + abs(float(self.rng.standard_normal())) * self.noise_stdev
        return rate

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_rate={self.base_rate!r})"


class LinearLRS(LearningRateSchedule):
    """``linear``: ε(1 − p) + (ε/tgtFactor)·p.

    Ports: alexnet-2012/src/lr.cu:85-92 LinearLRS
    """

    def __init__(self, base_rate, tgt_factor, noise_stdev=0.0, rng=None):
        super().__init__(base_rate, noise_stdev, rng)
        self.final_rate = self.base_rate / tgt_factor

    def _get_rate(self, progress):
        return self.base_rate * (1 - progress) + self.final_rate * progress


class ExpLRS(LearningRateSchedule):
    """``exp``: ε^(1 + p·(log(ε/f)/log ε − 1)), i.e. ε·f^(−p) computed as lr.cu does.

    Ports: alexnet-2012/src/lr.cu:99-107 ExpLRS
    """

    def __init__(self, base_rate, tgt_factor, noise_stdev=0.0, rng=None):
        super().__init__(base_rate, noise_stdev, rng)
        final_rate = self.base_rate / tgt_factor
        if self.base_rate == 0:
            self.pow = 1.0
        else:  # C double arithmetic: ε = 1 gives ±inf (or nan), and pow(1, ·) = 1 anyway
            with np.errstate(divide="ignore", invalid="ignore"):
                self.pow = float(np.log(final_rate) / np.log(self.base_rate) - 1)

    def _get_rate(self, progress):
        with np.errstate(invalid="ignore", over="ignore"):
            return float(np.power(self.base_rate, 1.0 + progress * self.pow))


class TanhLRS(LearningRateSchedule):
    """``tanh`` (coded in lr.cu, but neither its factory nor the parser can make it):
    β·(tanh(−α(p − ½)) + 1) with β = (ε + ε/f)/2 and α = 2·atanh((ε − ε/f)/(ε + ε/f)).

    Ports: alexnet-2012/src/lr.cu:114-125 TanhLRS
    """

    def __init__(self, base_rate, tgt_factor, noise_stdev=0.0, rng=None):
        super().__init__(base_rate, noise_stdev, rng)
        self.alpha = self.beta = 0.0
        if self.base_rate > 0:
            final_rate = self.base_rate / tgt_factor
            self.beta = 0.5 * (self.base_rate + final_rate)
            self.alpha = 2 * math.atanh((self.base_rate - final_rate) / (self.base_rate + final_rate))

    def _get_rate(self, progress):
        return self.beta * (math.tanh(-self.alpha * (progress - 0.5)) + 1.0)


class DiscreteExpLRS(LearningRateSchedule):
    """``dexp``: n steps; rᵢ = exp schedule at i/(n−1) for i < n−1, r_{n−1} = ε/f; returns rᵢ for
    p ∈ (i/n, (i+1)/n] (r₀ for p ≤ 1/n, the last rate past 1).

    Ports: alexnet-2012/src/lr.cu:132-151 DiscreteExpLRS
    """

    def __init__(self, base_rate, tgt_factor, noise_stdev=0.0, num_steps=1, rng=None):
        super().__init__(base_rate, noise_stdev, rng)
        elrs = ExpLRS(base_rate, tgt_factor, 0.0)
        num_steps = int(num_steps)
        self.rates = [elrs._get_rate(i / (num_steps - 1)) for i in range(num_steps - 1)]
        self.rates.append(self.base_rate / tgt_factor)

    def _get_rate(self, progress):
        n = len(self.rates)
        for i in range(n):
            if progress <= (i + 1) / n:
                return self.rates[i]
        return self.rates[-1]


class JumpyDiscreteExpLRS(DiscreteExpLRS):
    """``jdexp``: as dexp, but past the middle of interval i > 0, while 0.2 < p < 0.9, the rate
    is the geometric mean √(rᵢ·rᵢ₋₁) (lr.cu's "variant 2").

    Ports: alexnet-2012/src/lr.cu:158-186 JumpyDiscreteExpLRS
    """

    def _get_rate(self, progress):
        n = len(self.rates)
        idx = 0
        for i in range(n):
            if progress <= (i + 1) / n:
                idx = i
                break
        mid = (idx + 0.5) / n
        jump = idx > 0 and 0.2 < progress < 0.9 and progress > mid
        return math.sqrt(self.rates[idx] * self.rates[idx - 1]) if jump else self.rates[idx]


def _default(base, p, rng):
    """Ports: alexnet-2012/src/lr.cu:14-15 LearningRateSchedule"""
    return LearningRateSchedule(base, 0.0, rng)


def _linear(base, p, rng):
    """Ports: alexnet-2012/src/lr.cu:20-21 LinearLRS"""
    return LinearLRS(base, p["tgtFactor"], p["noiseStdev"], rng)


def _exp(base, p, rng):
    """Ports: alexnet-2012/src/lr.cu:22-23 ExpLRS"""
    return ExpLRS(base, p["tgtFactor"], p["noiseStdev"], rng)


def _dexp(base, p, rng):
    """Ports: alexnet-2012/src/lr.cu:24-26 DiscreteExpLRS"""
    return DiscreteExpLRS(base, p["tgtFactor"], p["noiseStdev"], int(p["numSteps"]), rng)


def _jdexp(base, p, rng):
    """Ports: alexnet-2012/src/lr.cu:27-29 JumpyDiscreteExpLRS"""
    return JumpyDiscreteExpLRS(base, p["tgtFactor"], p["noiseStdev"], int(p["numSteps"]), rng)


#: type string → constructor ``(base, params, rng) -> LearningRateSchedule`` (lr.cu's make).
SCHEDULES = {"default": _default, "linear": _linear, "exp": _exp, "dexp": _dexp, "jdexp": _jdexp}


def make_schedule(spec: Mapping | str, base: float,
                  rng: np.random.Generator | None = None) -> LearningRateSchedule:
    """The schedule for a layer dict's ``schedW``/``schedB`` (or a schedule string) and a base rate.

    Raises ValueError for an unknown type or a string that does not parse.

    Ports: alexnet-2012/src/lr.cu:12-33 LearningRateSchedule::make
    """
    if isinstance(spec, str):
        parsed = parse_schedule(spec)
        if parsed is None:
            raise ValueError(f"unable to parse learning rate schedule {spec!r}")
        spec = parsed
    kind = spec["type"]
    if kind not in SCHEDULES:
        raise ValueError(f"Unknown learning rate schedule type {kind}")
    return SCHEDULES[kind](base, dict(spec.get("params", {})), rng)
