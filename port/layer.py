"""The layer-definition / layer-params parser: the twin of the released ``layer.py`` (the layer
classes that run are ``port/layers/``, layer.cu's twins; their kernels ``port/layer_kernels.py``).

``parse_layers(layer_def, layer_params, options)`` reads the two INI files of a net the way the
2012 parser reads them and returns the layer dicts the compute layers are built from: a dict
``name → layer dict`` in cfg section order, followed by the ``<name>_neuron`` layers that
``neuron=`` keys spawn (appended in the order of their source layers, as the original does).
The keys and value types are the original's (camelCase, read back by the layer constructors
as ``pyDictGetInt(paramsDict, "filterSize")``); each parser class documents the keys it sets.
Weights are host NumPy float32 arrays shaped as the original's: fc ``(Din, out)`` per input in
Fortran order, conv ``(fc·fs², F)``, local ``(modules·fc·fs², F)``; biases fc ``(1, out)``,
conv ``(F, 1)`` (``(F·modules, 1)`` without ``sharedBiases``), local ``(F·modules, 1)``.

Keys every layer dict has: ``name``, ``type``, ``outputs``, ``requiresParams``, ``usesActs``,
``usesInputs``, ``forceOwnActs``, ``gradConsumer``, ``gpu`` (-1 for data layers),
``actsTarget`` and ``actsGradTarget`` (always -1: the original's buffer-sharing pass never
fires, see :meth:`LayerWithInputParser.optimize`), ``conserveMem``; with a params file also
``quantF``/``quantB`` (``{'type': 'default'|'half', 'params': {}}``). Layers with inputs add
``inputs`` (names), ``inputLayers`` (the input dicts themselves), ``numInputs`` (their output
sizes) and ``neuron`` (the ``neuron=`` string, ``''`` when none; a dict for neuron layers;
absent for costs).

What this module is not: it runs no layer and allocates nothing on a device. It does not read
data either; the sizes the data provider would give (``get_data_dims``, ``get_num_classes``,
the class tree) come from ``options``.

``options`` (the data provider's sizes, ``--num-gpus``, random numbers, the memory ceiling...) are
described in :mod:`port.parse_context`.

The checks against hostile input that the port adds (C ints, finite floats, the cfg file, memory,
unknown keys, saved layers) are in :mod:`port.cfg_checks`.
"""
from __future__ import annotations

import configparser
import contextlib
import importlib
import math
import re
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from port import cfg_checks, initw
from port.cfg_checks import BadValue, cfg_bool, cfg_float, cfg_int, check_bytes, check_memory, weight_shapes
from port.errors import ConfigError, UserError
from port.lr import ParamParser, parse_first, parse_schedule
from port.parse_context import ParseContext, make_context

__all__ = ["parse_layers", "conv_to_local", "unshare_weights", "LAYER_PARSERS", "NEURON_PARSERS",
           "parse_neuron", "get_layer_name", "check_saved_layers"]


# ---- Neurons --------------------------------------------------------------------------------

class NeuronParser:
    """A neuron without parameters, e.g. ``relu``: ``{'type', 'params': {}, 'usesActs', 'usesInputs'}``.

    Ports: alexnet-2012/layer.py:17-31 NeuronParser
    """

    def __init__(self, type: str, func_str: str, uses_acts=True, uses_inputs=True):
        self.type, self.func_str = type, func_str
        self.uses_acts, self.uses_inputs = uses_acts, uses_inputs

    def parse(self, type: str) -> dict | None:
        if type == self.type:
            return {"type": self.type, "params": {}, "usesActs": self.uses_acts,
                    "usesInputs": self.uses_inputs}
        return None


class ParamNeuronParser(NeuronParser):
    """A neuron with float parameters, e.g. ``tanh[a,b]`` written ``tanh[1.7159,0.6666]``.

    Values are digits, dots and minus signs only (no exponent), as the original's regex.

    Ports: alexnet-2012/layer.py:33-54 ParamNeuronParser
    DIVERGES: a malformed number (``tanh[1.2.3,1]``) is "unable to parse", not a ValueError
    traceback; so is one too long to be finite (``brelu[1111...]`` of 400 digits is inf).
    """
    neuron_regex = re.compile(r"^\s*(\w+)\s*\[\s*(\w+(\s*,\w+)*)\s*\]\s*$")

    def __init__(self, type, func_str, uses_acts=True, uses_inputs=True):
        super().__init__(type, func_str, uses_acts, uses_inputs)
        m = self.neuron_regex.match(type)
        self.base_type = m.group(1)
        self.param_names = m.group(2).split(",")

    def parse(self, type):
        m = re.match(r"^%s\s*\[([\d,\.\s\-]*)\]\s*$" % self.base_type, type)
        if m:
            try:
                vals = [cfg_float(v.strip()) for v in m.group(1).split(",")]
            except ValueError:
                return None
            if len(vals) == len(self.param_names):
                return {"type": self.base_type, "params": dict(zip(self.param_names, vals)),
                        "usesActs": self.uses_acts, "usesInputs": self.uses_inputs}
        return None


#: The 12 neurons of the release, sorted by type string as the original sorts them.
NEURON_PARSERS = sorted([
    NeuronParser("ident", "f(x) = x", uses_acts=False, uses_inputs=False),
    NeuronParser("logistic", "f(x) = 1 / (1 + e^-x)", uses_acts=True, uses_inputs=False),
    NeuronParser("abs", "f(x) = |x|", uses_acts=False, uses_inputs=True),
    NeuronParser("relu", "f(x) = max(0, x)", uses_acts=True, uses_inputs=False),
    NeuronParser("nrelu", "f(x) = max(0, x) + noise", uses_acts=True, uses_inputs=False),
    NeuronParser("softrelu", "f(x) = log(1 + e^x)", uses_acts=True, uses_inputs=False),
    NeuronParser("square", "f(x) = x^2", uses_acts=False, uses_inputs=True),
    NeuronParser("sqrt", "f(x) = sqrt(x)", uses_acts=True, uses_inputs=False),
    ParamNeuronParser("tanh[a,b]", "f(x) = a * tanh(b * x)", uses_acts=True, uses_inputs=False),
    ParamNeuronParser("brelu[a]", "f(x) = min(a, max(0, x))", uses_acts=True, uses_inputs=False),
    ParamNeuronParser("linear[a,b]", "f(x) = a * x + b", uses_acts=True, uses_inputs=False),
    ParamNeuronParser("drelu[a]", "f(x) = x - a * tanh(x / a)", uses_acts=False, uses_inputs=True),
], key=lambda p: p.type)


def parse_neuron(value: str) -> dict | None:
    """The neuron dict for a ``neuron=`` value, or None when no neuron parser accepts it.

    Ports: alexnet-2012/layer.py:1397-1409 neuron_parsers
    """
    return parse_first(NEURON_PARSERS, value)


#: Quantization schemes of inter-GPU transfers (``quantF``/``quantB``).
QUANT_PARSERS = [ParamParser("default"), ParamParser("half")]


# ---- Reading the INI files ------------------------------------------------------------------

class MyConfigParser:
    """One cfg file read as Python 2's ``SafeConfigParser`` reads it, with the original's getters.

    Section order is file order; keys are case-insensitive; ``#``/``;`` start comment lines and
    `` ;`` an inline comment; ``%`` interpolation is on; a repeated section or key merges (last
    value wins). Every failure is a :class:`ConfigError` naming file, section and key.

    Ports: alexnet-2012/layer.py:95-133 MyConfigParser
    """

    def __init__(self, path: Path, what: str):
        self.path = Path(path)
        self.cp = configparser.ConfigParser(strict=False, inline_comment_prefixes=(";",),
                                            empty_lines_in_values=False)
        self.read_keys: dict[str, dict[str, str]] = {}  # section -> {lower-case key: spelling}
        cfg_checks.read_cfg(self.cp, self.path, what)

    def sections(self) -> list[str]:
        return self.cp.sections()

    def has_section(self, section: str) -> bool:
        return self.cp.has_section(section)

    def has_option(self, section: str, option: str) -> bool:
        self.read_keys.setdefault(section, {})[option.lower()] = option
        return self.cp.has_option(section, option)

    def error(self, section, option, expected) -> ConfigError:
        return ConfigError(self.path, section, option, expected)

    def safe_get(self, section, option, default=None):
        self.read_keys.setdefault(section, {})[option.lower()] = option
        try:
            return self.cp.get(section, option)
        except configparser.NoSectionError:
            raise self.error(section, None, "no such section") from None
        except configparser.NoOptionError:
            if default is not None:
                return default
            raise self.error(section, option, "required parameter missing") from None
        except configparser.InterpolationError as e:
            raise self.error(section, option,
                             f"bad '%' interpolation ({type(e).__name__}); write '%%' for '%'") from None

    def _typed(self, section, option, conv, typestr, default):
        v = self.safe_get(section, option, default=default)
        if not isinstance(v, str):
            return v
        try:
            return conv(v)
        except BadValue as e:
            raise self.error(section, option, str(e)) from None
        except ValueError:
            raise self.error(section, option, f"must be {typestr}, got {v!r}") from None

    def safe_get_list(self, section, option, f=str, typestr="strings", default=None):
        v = self.safe_get(section, option, default=default)
        if isinstance(v, list):
            return v
        try:
            return [f(x.strip()) for x in v.split(",")]
        except BadValue as e:
            raise self.error(section, option, f"{e} (in the list {v!r})") from None
        except (ValueError, AttributeError):
            raise self.error(section, option,
                             f"must be ','-delimited list of {typestr}, got {v!r}") from None

    def safe_get_int(self, section, option, default=None):
        return self._typed(section, option, cfg_int, "int", default)

    def safe_get_float(self, section, option, default=None):
        return self._typed(section, option, cfg_float, "float", default)

    def safe_get_bool(self, section, option, default=None):
        return self._typed(section, option, cfg_bool, "bool", default)

    def safe_get_float_list(self, section, option, default=None):
        return self.safe_get_list(section, option, cfg_float, "floats", default)

    def safe_get_int_list(self, section, option, default=None):
        return self.safe_get_list(section, option, cfg_int, "ints", default)

    def safe_get_bool_list(self, section, option, default=None):
        return self.safe_get_list(section, option, lambda x: x.lower() in ("true", "1"),
                                  "bools", default)


class FakeConfigParser:
    """The part of :class:`MyConfigParser` that a spawned neuron layer reads from its own dict.

    Errors point at the source layer's section and its ``neuron`` key.

    Ports: alexnet-2012/layer.py:136-146 FakeConfigParser
    """

    def __init__(self, dic: dict, path: Path, section: str):
        self.dic, self.path, self.section = dic, path, section

    def error(self, section, option, expected) -> ConfigError:
        return ConfigError(self.path, self.section, "neuron", expected)

    def safe_get(self, section, option, default=None):
        return self.dic.get(option, default)

    def safe_get_int(self, section, option, default=None):
        return int(self.safe_get(section, option, default))


# ---- Layer parsers --------------------------------------------------------------------------

class LayerParser:
    """The base of every parser: defaults, the checks' error messages, the quantizer keys.

    Sets ``outputs`` 0, ``requiresParams`` False, ``usesActs``/``usesInputs``/``forceOwnActs``
    True, ``gradConsumer`` False, ``gpu`` -1; ``parse`` sets ``name`` and ``type``; the params
    file adds ``quantF`` and ``quantB`` (read from the source layer's section for a spawned
    neuron layer).

    Ports: alexnet-2012/layer.py:148-270 LayerParser
    """

    def __init__(self):
        self.dic: dict = {}
        self.path: Path | None = None
        self.ctx: ParseContext | None = None
        self.set_defaults()

    def set_defaults(self):
        """Ports: alexnet-2012/layer.py:186-223 set_defaults"""
        self.dic["outputs"] = 0
        self.dic["requiresParams"] = False
        self.dic["usesActs"] = True
        self.dic["usesInputs"] = True
        self.dic["forceOwnActs"] = True
        self.dic["gradConsumer"] = False
        self.dic["gpu"] = -1

    def init(self, dic: dict, ctx: ParseContext | None = None) -> LayerParser:
        """A parser around an existing layer dict (to add params to a parsed or saved layer).

        Ports: alexnet-2012/layer.py:182-184 init
        """
        self.dic, self.ctx = dic, ctx
        return self

    def fail(self, key: str | None, expected: str, section: str | None = None):
        """Raise the one-line ConfigError for this layer's section (the original's LayerParsingError).

        Ports: alexnet-2012/layer.py:13-14 LayerParsingError
        """
        raise ConfigError(self.path, section or self.dic.get("name"), key, expected)

    def log(self, line: str):
        """Send one of the original's ``Initialized ...`` lines to ``options['log']``.

        Port-only: the original prints them; here ``options['log']`` receives them (the driver
        prints them; port.compat and the site do not).
        """
        if self.ctx is not None:
            self.ctx.log(line)

    def optimize(self, layers: dict):
        """Ports: alexnet-2012/layer.py:154-156 optimize"""
        self.dic["actsTarget"] = -1
        self.dic["actsGradTarget"] = -1

    def parse_params(self, mcp, parsers, param_name, default, human_name):
        """Ports: alexnet-2012/layer.py:158-172 parse_params"""
        dic, name = self.dic, self.dic["name"]
        vals = default
        if mcp.has_section(name):
            vals = mcp.safe_get(name, param_name, default="default")
        elif "src_layer" in dic and mcp.has_section(dic["src_layer"]):
            vals = mcp.safe_get(dic["src_layer"], param_name, default="default")
        for p in parsers:
            parsed = p(vals) if callable(p) else p.parse(vals)
            if parsed:
                return parsed
        expected = f"unable to parse {human_name} {param_name}={vals}"
        if parsers and parsers[0] is parse_schedule:
            expected += (" (expected default, linear/exp[tgtFactor,noiseStdev] or"
                         " dexp/jdexp[tgtFactor,noiseStdev,numSteps], named k=v or positional)")
        section = name if mcp.has_section(name) else dic.get("src_layer", name)
        raise ConfigError(mcp.path, section, param_name, expected)

    def add_params(self, mcp):
        """Ports: alexnet-2012/layer.py:175-178 add_params"""
        self.path = mcp.path
        self.dic["quantF"] = self.parse_params(mcp, QUANT_PARSERS, "quantF", "default",
                                               "forward quantization scheme")
        self.dic["quantB"] = self.parse_params(mcp, QUANT_PARSERS, "quantB", "default",
                                               "backward quantization scheme")

    def parse(self, name, mcp, prev_layers, ctx):
        """Ports: alexnet-2012/layer.py:225-230 parse"""
        self.prev_layers, self.ctx, self.path, self.mcp = prev_layers, ctx, mcp.path, mcp
        self.dic["name"] = name
        self.dic["type"] = mcp.safe_get(name, "type")
        return self.dic

    def verify_float_range(self, v, param_name, _min, _max):
        """Ports: alexnet-2012/layer.py:232-233 verify_float_range"""
        self.verify_num_range(v, param_name, _min, _max, strconv=lambda x: "%.3f" % x)

    def verify_num_range(self, v, param_name, _min, _max, strconv=lambda x: "%d" % x):
        """Ports: alexnet-2012/layer.py:235-249 verify_num_range"""
        for i, vv in enumerate(v) if isinstance(v, list) else [(-1, v)]:
            where = "" if i < 0 else f" (input {i})"
            if _min is not None and _max is not None and (vv < _min or vv > _max):
                self.fail(param_name, f"must be in the range {strconv(_min)}-{strconv(_max)}{where}, got {vv}")
            elif _min is not None and vv < _min:
                self.fail(param_name, f"must be greater than or equal to {strconv(_min)}{where}, got {vv}")
            elif _max is not None and vv > _max:
                self.fail(param_name, f"must be smaller than or equal to {strconv(_max)}{where}, got {vv}")

    def verify_divisible(self, value, div, value_name, div_name=None, input_idx=0, key=None):
        """Ports: alexnet-2012/layer.py:251-254 verify_divisible"""
        if value % div != 0:
            where = f" (input {input_idx})" if self.dic.get("inputs") else ""
            by = str(div) if div_name is None else f"'{div_name}' ({div})"
            self.fail(key or value_name.split()[0],
                      f"'{value_name}' ({value}) must be divisible by {by}{where}")

    def verify_str_in(self, value, param_name, lst):
        """Ports: alexnet-2012/layer.py:256-258 verify_str_in"""
        if value not in lst:
            self.fail(param_name, "must be one of " + ", ".join(f"'{s}'" for s in lst) + f", got '{value}'")

    def verify_int_in(self, value, param_name, lst):
        """Ports: alexnet-2012/layer.py:260-262 verify_int_in"""
        if value not in lst:
            self.fail(param_name, "must be one of " + ", ".join(f"'{s}'" for s in lst) + f", got {value}")

    def verify_input_dims(self, dims):
        """Ports: alexnet-2012/layer.py:264-267 verify_input_dims"""
        for i, d in enumerate(dims):
            if d is not None and self.dic["numInputs"][i] != d:
                self.fail("inputs", f"dimensionality of input {i} must be {d}, got {self.dic['numInputs'][i]}")


class LayerWithInputParser(LayerParser):
    """Any layer with inputs (every type but data).

    Sets ``inputs`` (names), ``inputLayers`` (dicts), ``numInputs``, ``neuron`` (string) and
    ``gpu`` (default: the first input's). ``num_inputs`` > 0 fixes the number of inputs.

    Ports: alexnet-2012/layer.py:328-402 LayerWithInputParser
    DIVERGES: a layer whose gpu would be -1 (a data input and no ``gpu=`` key, as in every
    example-layers cfg) runs on GPU 0; the 2012 parser rejects it, the 2011 one had no gpu key.
    DIVERGES: with ``num_gpus`` unset, gpu indices have no upper bound (the port runs every gpu on
    one device); the original requires ``--num-gpus`` > every index.
    """

    def __init__(self, num_inputs=-1):
        super().__init__()
        self.num_inputs = num_inputs

    def verify_num_params(self, params):
        """Ports: alexnet-2012/layer.py:333-336 verify_num_params"""
        for param in params:
            if len(self.dic[param]) != len(self.dic["inputs"]):
                self.fail(param, f"list length ({len(self.dic[param])}) does not match number of"
                                 f" inputs ({len(self.dic['inputs'])})")

    def optimize(self, layers):
        """The original's buffer-sharing pass counts consumers with ``for ll in layers`` over the
        layers *dict*, i.e. over names, so the count is never 1 and nothing is ever shared:
        ``actsTarget`` and ``actsGradTarget`` stay -1. The port keeps that outcome.

        Ports: alexnet-2012/layer.py:338-355 optimize
        """
        LayerParser.optimize(self, layers)

    def parse(self, name, mcp, prev_layers, ctx):
        """Ports: alexnet-2012/layer.py:357-386 parse"""
        dic = LayerParser.parse(self, name, mcp, prev_layers, ctx)
        inputs = mcp.safe_get(name, "inputs")
        dic["inputs"] = [inp.strip() for inp in inputs.split(",")]
        for inp in dic["inputs"]:
            if inp not in prev_layers:
                if inp == name:
                    self.fail("inputs", "layer cannot take itself as input")
                if inp in ctx.sections:
                    self.fail("inputs", f"input layer '{inp}' is defined after this layer"
                                        " (inputs must be defined first)")
                self.fail("inputs", f"input layer '{inp}' not defined")
        dic["inputLayers"] = [prev_layers[inp] for inp in dic["inputs"]]
        for inp in dic["inputLayers"]:
            if inp["outputs"] == 0:
                self.fail("inputs", f"input layer '{inp['name']}' does not produce any output")
        dic["numInputs"] = [inp["outputs"] for inp in dic["inputLayers"]]
        dic["neuron"] = mcp.safe_get(name, "neuron", default="")
        if self.num_inputs > 0 and len(dic["numInputs"]) != self.num_inputs:
            self.fail("inputs", f"number of inputs must be {self.num_inputs}, got {len(dic['inputs'])}")
        first_gpu = dic["inputLayers"][0]["gpu"]
        dic["gpu"] = mcp.safe_get_int(name, "gpu", default=first_gpu if first_gpu >= 0 else 0)
        if ctx.num_gpus is not None:
            self.verify_int_in(dic["gpu"], "gpu", range(0, ctx.num_gpus))
        elif dic["gpu"] < 0:
            self.fail("gpu", f"must be a GPU index >= 0, got {dic['gpu']}")
        return dic

    def verify_img_size(self):
        """Ports: alexnet-2012/layer.py:388-391 verify_img_size"""
        dic = self.dic
        if dic["numInputs"][0] % dic["imgPixels"] != 0 or dic["imgSize"] ** 2 != dic["imgPixels"]:
            self.fail("channels", f"has {dic['numInputs'][0]}-dimensional input, not interpretable"
                                  f" as {dic['channels']}-channel square images")

    def verify_same_input_dims(self):
        """Every input must have the same size: the check eltsum and eltmax both make."""
        if len(set(self.dic["numInputs"])) != 1:
            self.fail("inputs", "all inputs must have the same dimensionality; got dimensionalities: "
                      + ", ".join(str(s) for s in self.dic["numInputs"]))

    @staticmethod
    def grad_consumers_below(dic) -> bool:
        """Ports: alexnet-2012/layer.py:393-398 grad_consumers_below"""
        if dic["gradConsumer"]:
            return True
        return any(LayerWithInputParser.grad_consumers_below(l) for l in dic.get("inputLayers", []))

    def verify_no_grads(self):
        """Ports: alexnet-2012/layer.py:400-402 verify_no_grads"""
        if LayerWithInputParser.grad_consumers_below(self.dic):
            self.fail("type", f"layers of type '{self.dic['type']}' cannot propagate gradient and"
                              " must not be placed over layers with parameters")


def _img_pixels(parser: LayerWithInputParser, channels: int) -> tuple[int, int]:
    """(imgPixels, imgSize) of the first input seen as ``channels``-channel square images."""
    if channels < 1:
        parser.fail("channels", f"must be greater than or equal to 1, got {channels}")
    pixels = parser.dic["numInputs"][0] // channels
    if pixels < 1:  # Port-only: refused; the original divided by zero in verify_img_size
        parser.fail("channels", f"has {parser.dic['numInputs'][0]}-dimensional input, fewer values than"
                                f" its {channels} channels")
    return pixels, math.isqrt(pixels)


class NailbedLayerParser(LayerWithInputParser):
    """``nailbed``: every stride-th pixel. Keys: ``channels``, ``stride``, ``imgPixels``,
    ``imgSize``, ``outputsX`` = ⌈img/stride⌉, ``start`` = (img − stride·(outputsX − 1))/2.

    Ports: alexnet-2012/layer.py:404-431 NailbedLayerParser
    DIVERGES: ``stride`` 1 is refused here; the original parsed it and the kernel asserted at run
    time.
    """

    def __init__(self):
        super().__init__(num_inputs=1)

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        dic["forceOwnActs"] = dic["usesActs"] = dic["usesInputs"] = False
        dic["channels"] = mcp.safe_get_int(name, "channels")
        dic["stride"] = mcp.safe_get_int(name, "stride")
        self.verify_num_range(dic["channels"], "channels", 1, None)
        self.verify_num_range(dic["stride"], "stride", 2, None)  # the kernel asserts stride > 1
        dic["imgPixels"], dic["imgSize"] = _img_pixels(self, dic["channels"])
        dic["outputsX"] = (dic["imgSize"] + dic["stride"] - 1) // dic["stride"]
        dic["start"] = (dic["imgSize"] - dic["stride"] * (dic["outputsX"] - 1)) // 2
        dic["outputs"] = dic["channels"] * dic["outputsX"] ** 2
        self.verify_num_range(dic["outputsX"], "outputsX", 0, None)
        self.verify_img_size()
        self.log(f"Initialized bed-of-nails layer '{name}' on GPU {dic['gpu']}, producing "
                 f"{dic['outputsX']}x{dic['outputsX']} {dic['channels']}-channel output")
        return dic


class GaussianBlurLayerParser(LayerWithInputParser):
    """``blur``: separable Gaussian. Keys: ``channels``, ``filterSize`` ∈ {3,5,7,9}, ``stdev``,
    ``imgPixels``, ``imgSize``, ``filter`` (a (1, filterSize) float32 array summing to 1).

    Ports: alexnet-2012/layer.py:433-464 GaussianBlurLayerParser
    """

    def __init__(self):
        super().__init__(num_inputs=1)

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        dic["forceOwnActs"] = dic["usesActs"] = dic["usesInputs"] = False
        dic["outputs"] = dic["numInputs"][0]
        dic["channels"] = mcp.safe_get_int(name, "channels")
        dic["filterSize"] = mcp.safe_get_int(name, "filterSize")
        dic["stdev"] = mcp.safe_get_float(name, "stdev")
        self.verify_num_range(dic["channels"], "channels", 1, None)
        self.verify_int_in(dic["filterSize"], "filterSize", [3, 5, 7, 9])
        if dic["stdev"] <= 0:
            self.fail("stdev", f"must be > 0, got {dic['stdev']}")
        dic["imgPixels"], dic["imgSize"] = _img_pixels(self, dic["channels"])
        fs = dic["filterSize"]
        filt = np.array([math.exp(-(fs // 2 - i) ** 2 / float(2 * dic["stdev"] ** 2)) for i in range(fs)],
                        dtype=np.float32).reshape(1, fs)  # (1, filterSize)
        dic["filter"] = filt / filt.sum()
        self.verify_img_size()
        if dic["filterSize"] > dic["imgSize"]:
            self.fail("filterSize", f"filter size ({fs}) must be smaller than image size ({dic['imgSize']})")
        self.log(f"Initialized Gaussian blur layer '{name}', producing {dic['imgSize']}x{dic['imgSize']}"
                 f" {dic['channels']}-channel output")
        return dic


class HorizontalReflectionLayerParser(LayerWithInputParser):
    """``href``: mirror images left-right. Keys: ``channels`` (1-3), ``imgPixels``, ``imgSize``.

    Ports: alexnet-2012/layer.py:466-484 HorizontalReflectionLayerParser
    """

    def __init__(self):
        super().__init__(num_inputs=1)

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        dic["outputs"] = dic["numInputs"][0]
        dic["channels"] = mcp.safe_get_int(name, "channels")
        self.verify_num_range(dic["channels"], "channels", 1, 3)
        dic["imgPixels"], dic["imgSize"] = _img_pixels(self, dic["channels"])
        self.verify_img_size()
        self.log(f"Initialized horizontal reflection layer '{name}', producing "
                 f"{dic['imgSize']}x{dic['imgSize']} {dic['channels']}-channel output")
        return dic


class ResizeLayerParser(LayerWithInputParser):
    """``resize``: bilinear rescale. Keys: ``channels``, ``imgPixels``, ``imgSize``, ``scale``
    (0.5-2), ``tgtSize`` = ⌊img/scale⌋, ``tgtPixels``. No layer with weights may lie below.

    Ports: alexnet-2012/layer.py:486-514 ResizeLayerParser
    """

    def __init__(self):
        super().__init__(num_inputs=1)

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        dic["forceOwnActs"] = dic["usesActs"] = dic["usesInputs"] = False
        dic["channels"] = mcp.safe_get_int(name, "channels")
        dic["imgPixels"], dic["imgSize"] = _img_pixels(self, dic["channels"])
        dic["scale"] = mcp.safe_get_float(name, "scale")
        self.verify_float_range(dic["scale"], "scale", 0.5, 2)
        dic["tgtSize"] = int(math.floor(dic["imgSize"] / dic["scale"]))
        dic["tgtPixels"] = dic["tgtSize"] ** 2
        dic["outputs"] = dic["channels"] * dic["tgtPixels"]
        self.verify_img_size()
        self.verify_no_grads()
        self.log(f"Initialized resize layer '{name}', producing {dic['tgtSize']}x{dic['tgtSize']}"
                 f" {dic['channels']}-channel output")
        return dic


class RandomScaleLayerParser(LayerWithInputParser):
    """``rscale``: random rescale and crop. Keys: ``channels``, ``imgPixels``, ``imgSize``,
    ``maxScale`` (1-2), ``tgtSize`` (⌊img/maxScale⌋ ≤ tgtSize ≤ img), ``tgtPixels``.

    Ports: alexnet-2012/layer.py:516-552 RandomScaleLayerParser
    """

    def __init__(self):
        super().__init__(num_inputs=1)

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        dic["forceOwnActs"] = dic["usesActs"] = dic["usesInputs"] = False
        dic["channels"] = mcp.safe_get_int(name, "channels")
        self.verify_num_range(dic["channels"], "channels", 1, None)
        dic["imgPixels"], dic["imgSize"] = _img_pixels(self, dic["channels"])
        dic["maxScale"] = mcp.safe_get_float(name, "maxScale")
        dic["tgtSize"] = mcp.safe_get_int(name, "tgtSize")
        self.verify_float_range(dic["maxScale"], "maxScale", 1, 2)
        min_size = int(math.floor(dic["imgSize"] / dic["maxScale"]))
        if dic["tgtSize"] < min_size:
            self.fail("tgtSize", f"target size must be greater than minimum image size after rescaling ({min_size})")
        if dic["tgtSize"] > dic["imgSize"]:
            self.fail("tgtSize", f"target size must be smaller than maximum image size after rescaling ({dic['imgSize']})")
        dic["tgtPixels"] = dic["tgtSize"] ** 2
        dic["outputs"] = dic["channels"] * dic["tgtPixels"]
        self.verify_img_size()
        self.verify_no_grads()
        self.log(f"Initialized random scale layer '{name}', producing {dic['tgtSize']}x{dic['tgtSize']}"
                 f" {dic['channels']}-channel output")
        return dic


class ColorTransformLayerParser(LayerWithInputParser):
    """Colour-space transforms of 3-channel images: ``channels`` = 3, ``imgPixels``, ``imgSize``.
    ``rgb2lab`` adds ``center`` (bool, default False).

    Ports: alexnet-2012/layer.py:554-592 ColorTransformLayerParser
    """
    what = "RGB --> YUV"

    def __init__(self):
        super().__init__(num_inputs=1)

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        dic["forceOwnActs"] = dic["usesActs"] = dic["usesInputs"] = False
        dic["imgPixels"], dic["imgSize"] = _img_pixels(self, 3)
        dic["channels"] = 3
        dic["outputs"] = dic["numInputs"][0]
        self.verify_img_size()
        self.verify_no_grads()
        if dic["type"] == "rgb2lab":
            dic["center"] = mcp.safe_get_bool(name, "center", default=False)
        self.log(f"Initialized {self.what} layer '{name}', producing {dic['imgSize']}x{dic['imgSize']}"
                 f" {dic['channels']}-channel output")
        return dic


class RGBToLABLayerParser(ColorTransformLayerParser):
    """Ports: alexnet-2012/layer.py:584-592 RGBToLABLayerParser"""
    what = "RGB --> LAB"


class NeuronLayerParser(LayerWithInputParser):
    """``neuron`` (also spawned by a ``neuron=`` key on any other layer). Keys: ``neuron`` (the
    dict ``{'type', 'params', 'usesActs', 'usesInputs'}``, whose flags the layer copies); a spawned
    layer also has ``src_layer`` (the layer it was detached from).

    Ports: alexnet-2012/layer.py:594-653 NeuronLayerParser
    """

    def __init__(self):
        super().__init__(num_inputs=1)

    @staticmethod
    def get_unused_layer_name(layers, wish):
        """Ports: alexnet-2012/layer.py:598-606 get_unused_layer_name"""
        if wish not in layers:
            return wish
        for i in range(1, 100):
            name = f"{wish}.{i}"
            if name not in layers:
                return name
        raise ConfigError("<layers>", wish, None, "no free layer name")

    def parse_neuron(self, neuron_str, mcp):
        """Ports: alexnet-2012/layer.py:608-625 parse_neuron
        DIVERGES: the error lists the valid neuron types on one line instead of a table.
        """
        p = parse_neuron(neuron_str)
        if p is None:
            valid = ", ".join(n.type for n in NEURON_PARSERS)
            raise mcp.error(self.dic["name"], "neuron",
                            f"unable to parse neuron type '{neuron_str}'; valid neuron types: {valid}"
                            " (where neurons have parameters, they must be floats)")
        # Port-only: drelu[0] refused: f(x) = x - a·tanh(x/a) divides by a.
        if p["type"] == "drelu" and p["params"]["a"] == 0:
            raise mcp.error(self.dic["name"], "neuron", f"neuron type '{neuron_str}': drelu[a] divides by a,"
                            " which must not be 0")
        self.dic["neuron"] = p
        self.dic["usesActs"] = p["usesActs"]
        self.dic["usesInputs"] = p["usesInputs"]

    def detach_neuron_layer(self, src_name, layers, ctx):
        """Ports: alexnet-2012/layer.py:627-645 detach_neuron_layer"""
        dic = self.dic
        dic["name"] = NeuronLayerParser.get_unused_layer_name(layers, f"{src_name}_neuron")
        dic["type"] = "neuron"
        dic["inputs"] = src_name
        dic["neuron"] = layers[src_name]["neuron"]
        dic["gpu"] = layers[src_name]["gpu"]
        fake = FakeConfigParser(dic, ctx.def_path, src_name)
        dic = self.parse(dic["name"], fake, layers, ctx)
        dic["src_layer"] = src_name
        for l in layers.values():
            if "inputs" in l:
                l["inputs"] = [inp if inp != src_name else dic["name"] for inp in l["inputs"]]
                l["inputLayers"] = [inp if inp["name"] != src_name else dic for inp in l["inputLayers"]]
        layers[dic["name"]] = dic

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        dic["outputs"] = dic["numInputs"][0]
        self.parse_neuron(dic["neuron"], mcp)
        dic["forceOwnActs"] = False
        self.log(f"Initialized neuron layer '{name}' on GPU {dic['gpu']}, producing {dic['outputs']} outputs")
        return dic


def detach_neuron_layers(layers: dict, ctx: ParseContext):
    """Spawn a ``<name>_neuron`` layer for every ``neuron=`` key and rewire the consumers to it.

    Ports: alexnet-2012/layer.py:270-275 detach_neuron_layers
    """
    for name, l in list(layers.items()):
        if l["type"] != "neuron" and l.get("neuron"):
            parser = NeuronLayerParser()
            parser.detach_neuron_layer(name, layers, ctx)
            check_memory(parser)


class EltwiseSumLayerParser(LayerWithInputParser):
    """``eltsum``: Σ coeffᵢ·xᵢ over inputs of equal size. Keys: ``coeffs`` (default all 1).

    Ports: alexnet-2012/layer.py:655-672 EltwiseSumLayerParser
    DIVERGES: a ``coeffs`` list whose length differs from the number of inputs is an error (the
    original does not check it and the layer would read past the list).
    """

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        self.verify_same_input_dims()
        dic["outputs"] = dic["numInputs"][0]
        dic["usesInputs"] = dic["usesActs"] = dic["forceOwnActs"] = False
        dic["coeffs"] = mcp.safe_get_float_list(name, "coeffs", default=[1.0] * len(dic["inputs"]))
        self.verify_num_params(["coeffs"])
        self.log(f"Initialized elementwise sum layer '{name}' on GPU {dic['gpu']}, producing {dic['outputs']} outputs")
        return dic


class EltwiseMaxLayerParser(LayerWithInputParser):
    """``eltmax``: element-wise max of ≥ 2 inputs of equal size.

    Ports: alexnet-2012/layer.py:674-687 EltwiseMaxLayerParser
    """

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        if len(dic["inputs"]) < 2:
            self.fail("inputs", f"elementwise max layer must have at least 2 inputs, got {len(dic['inputs'])}")
        self.verify_same_input_dims()
        dic["outputs"] = dic["numInputs"][0]
        self.log(f"Initialized elementwise max layer '{name}' on GPU {dic['gpu']}, producing {dic['outputs']} outputs")
        return dic


class HiddenSexLayerParser(LayerWithInputParser):
    """``hs`` (dropout, "hidden sex"). Keys: ``keep`` (def file); ``enable`` (params file, bool).

    Ports: alexnet-2012/layer.py:689-709 HiddenSexLayerParser
    DIVERGES: ``keep`` must be a probability (0-1); the original took any float.
    """

    def __init__(self):
        super().__init__(num_inputs=1)

    def add_params(self, mcp):
        super().add_params(mcp)
        self.dic["enable"] = mcp.safe_get_bool(self.dic["name"], "enable")

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        dic["requiresParams"] = True
        dic["usesInputs"] = dic["usesActs"] = dic["forceOwnActs"] = False
        dic["outputs"] = dic["numInputs"][0]
        dic["keep"] = mcp.safe_get_float(name, "keep")
        self.verify_float_range(dic["keep"], "keep", 0, 1)
        self.log(f"Initialized hidden sex layer '{name}' on GPU {dic['gpu']}, producing {dic['outputs']} outputs")
        return dic


_LAYER_PAT = re.compile(r"^\s*([^\s\[]+)(?:\[(\d+)\])?\s*$")


def get_layer_name(name_str: str) -> tuple[str, int | None] | None:
    """``'conv1[2]'`` → ``('conv1', 2)``; ``'conv1'`` → ``('conv1', None)``; None if malformed.

    Ports: alexnet-2012/layer.py:712-722 get_layer_name
    DIVERGES: the index is an int (the original returns the matched string, which its
    unshare_weights then fails to use as a list index).
    """
    m = _LAYER_PAT.match(name_str)
    if not m:
        return None
    return m.group(1), (int(m.group(2)) if m.group(2) is not None else None)


class WeightLayerParser(LayerWithInputParser):
    """Layers with weights (fc, treefc, conv, local).

    Def-file keys: ``initW`` (per input), ``initB`` (0), ``initWFunc``/``initBFunc`` (''),
    ``weightSource`` (per input: ``layer[idx]``, ``layer`` or ''), giving ``weightSourceLayers``
    (names, '' for own) and ``weightSourceMatrixIndices`` (-1 for own); ``weights``/``weightsInc``
    (lists of float32 arrays, a shared matrix is the source's very object) and ``biases``/
    ``biasesInc`` (absent with ``init_weights=False``); ``requiresParams`` and ``gradConsumer``
    True, ``usesActs`` False.
    Params-file keys: ``epsW``, ``momW``, ``wc`` (0), ``wball`` (0) per input, ``wballNormed``
    (= wball·weightsPerFilter), ``epsB``, ``momB``, ``superEps``/``superMom`` (0), ``schedW``/
    ``schedB`` (``{'type', 'params'}``), and ``gradConsumer`` = any eps > 0.

    Ports: alexnet-2012/layer.py:711-871 WeightLayerParser
    """

    def add_params(self, mcp):
        """Ports: alexnet-2012/layer.py:725-744 add_params"""
        super().add_params(mcp)
        dic, name = self.dic, self.dic["name"]
        dic["epsW"] = mcp.safe_get_float_list(name, "epsW")
        dic["epsB"] = mcp.safe_get_float(name, "epsB")
        dic["momW"] = mcp.safe_get_float_list(name, "momW")
        dic["momB"] = mcp.safe_get_float(name, "momB")
        dic["superEps"] = mcp.safe_get_float(name, "superEps", default=0.0)
        dic["superMom"] = mcp.safe_get_float(name, "superMom", default=0.0)
        dic["wc"] = mcp.safe_get_float_list(name, "wc", default=[0.0] * len(dic["inputs"]))
        dic["wball"] = mcp.safe_get_float_list(name, "wball", default=[0.0] * len(dic["inputs"]))
        self.verify_num_params(["epsW", "momW", "wc", "wball"])
        dic["wballNormed"] = [wball * nw for wball, nw in zip(dic["wball"], dic["weightsPerFilter"])]
        dic["schedW"] = self.parse_params(mcp, [parse_schedule], "schedW", "default", "learning rate schedule")
        dic["schedB"] = self.parse_params(mcp, [parse_schedule], "schedB", "default", "learning rate schedule")
        for key in ("schedW", "schedB"):
            for param, v in dic[key]["params"].items():
                if isinstance(v, float) and not math.isfinite(v):
                    self.fail(key, f"schedule parameter {param} must be a finite float, got {v}")
        dic["gradConsumer"] = dic["epsB"] > 0 or any(w > 0 for w in dic["epsW"])

    def call_init_func(self, param_name, shapes, input_idx=-1):
        """Call ``module.func(p1,p2,...)`` from the cfg: ``func(layerName, inputIdx, shapes,
        params=[...])`` (``inputIdx`` left out for biases). The module is imported from the def
        file's folder first, then from ``sys.path``.

        Ports: alexnet-2012/layer.py:763-775 call_init_func
        DIVERGES: any failure of the function (not only ImportError/AttributeError/TypeError) is a
        one-line ConfigError, and the module is also looked up beside the def file. The module
        ``initw`` is the port's twin (port/initw.py), reading the ``initw_source`` option.
        """
        dic = self.dic
        func_pat = re.compile(r"^([^\.]+)\.([^\(\)]+)\s*(?:\(([^,]+(?:,[^,]+)*)\))?$")
        m = func_pat.match(dic[param_name])
        if not m:
            self.fail(param_name, "must have format 'moduleName.functionName(param1,param2,...)';"
                                  f" got: {dic[param_name]}")
        module, func = m.group(1), m.group(2).strip()
        params = m.group(3).split(",") if m.group(3) is not None else []
        cfg_dir = str(self.ctx.def_path.resolve().parent)
        added = cfg_dir not in sys.path
        if added:
            sys.path.insert(0, cfg_dir)
        try:
            if module == "initw":
                mod, ctxm = initw, initw.source(self.ctx.initw_source)
            else:
                mod, ctxm = importlib.import_module(module), contextlib.nullcontext()
            fn = getattr(mod, func)
            with ctxm:
                if input_idx >= 0:
                    return fn(dic["name"], input_idx, shapes, params=params)
                return fn(dic["name"], shapes, params=params)
        except UserError as e:
            self.fail(param_name, f"{dic[param_name]}: {e}")
        except Exception as e:  # the user's code: report it on one line
            self.fail(param_name, f"{dic[param_name]} failed: {type(e).__name__}: {e}".splitlines()[0])
        finally:
            if added:
                sys.path.remove(cfg_dir)

    def check_init_result(self, key, what, result_name, arr, shape, where=""):
        """An init function must return a float32 numpy array of ``shape``.

        Ports: alexnet-2012/layer.py:777-808 make_weights
        Ports: alexnet-2012/layer.py:810-825 make_biases
        """
        func = self.dic[key]
        if not isinstance(arr, np.ndarray):
            self.fail(key, f"{what} initialization function {func} must return"
                           f" numpy.ndarray object{where}; got: {type(arr).__name__}")
        if arr.dtype != np.float32:
            self.fail(key, f"{what} initialization function {func} must return"
                           f" single-precision floats{where}; got: {arr.dtype}")
        if arr.shape != shape:
            self.fail(key, f"{result_name} returned by {func} has wrong shape"
                           f"{where}; should be: {shape}; got: {arr.shape}")

    def make_weights(self, initW, rows, cols, order="C"):
        """Ports: alexnet-2012/layer.py:777-808 make_weights"""
        dic = self.dic
        if not self.ctx.init_weights:
            return
        check_memory(self)
        dic["weights"], dic["weightsInc"] = [], []
        if dic["initWFunc"]:
            for i in range(len(dic["inputs"])):
                w = self.call_init_func("initWFunc", (rows[i], cols[i]), input_idx=i)
                self.check_init_result("initWFunc", "weight", "weight matrix", w, (rows[i], cols[i]),
                                       f" (input {i})")
                w = np.require(w, requirements=order)
                dic["weights"].append(w)
                dic["weightsInc"].append(np.zeros_like(w))
                self.log(f"Layer '{dic['name']}[{i}]' initialized weight matrices from function {dic['initWFunc']}")
            return
        for i in range(len(dic["inputs"])):
            src = dic["weightSourceLayers"][i]
            if src != "":
                src_layer = self.prev_layers[src] if src != dic["name"] else dic
                j = dic["weightSourceMatrixIndices"][i]
                dic["weights"].append(src_layer["weights"][j])
                dic["weightsInc"].append(src_layer["weightsInc"][j])
                self.log(f"Layer '{dic['name']}' initialized weight matrix {i} from {dic['weightSource'][i]}")
            else:
                w = np.array(initW[i] * self.ctx.rng.standard_normal((rows[i], cols[i])),
                             dtype=np.float32, order=order)  # (rows, cols)
                dic["weights"].append(w)
                dic["weightsInc"].append(np.zeros_like(w))

    def make_biases(self, rows, cols, order="C"):
        """Ports: alexnet-2012/layer.py:810-825 make_biases"""
        dic = self.dic
        if not self.ctx.init_weights:
            return
        if dic["initBFunc"]:
            b = self.call_init_func("initBFunc", (rows, cols))
            self.check_init_result("initBFunc", "bias", "bias vector", b, (rows, cols))
            dic["biases"] = np.require(b, requirements=order)
            self.log(f"Layer '{dic['name']}' initialized bias vector from function {dic['initBFunc']}")
        else:
            dic["biases"] = np.array(dic["initB"] * np.ones((rows, cols)), dtype=np.float32, order=order)
        dic["biasesInc"] = np.zeros_like(dic["biases"])

    def check_shared_shapes(self):
        """A shared matrix must have the shape this layer needs (checked without weights too).

        Ports: alexnet-2012/layer.py:777-808 make_weights
        """
        dic = self.dic
        shapes = weight_shapes(dic)
        for i, src in enumerate(dic["weightSourceLayers"]):
            if src == "" or dic["initWFunc"]:
                continue
            j = dic["weightSourceMatrixIndices"][i]
            src_shape = weight_shapes(self.prev_layers[src])[j] if src != dic["name"] else shapes[j]
            if src_shape != shapes[i]:
                self.fail("weightSource", f"weight sharing source matrix '{dic['weightSource'][i]}' has shape"
                          f" {src_shape[0]}x{src_shape[1]}; should be {shapes[i][0]}x{shapes[i][1]}")

    def parse(self, name, mcp, prev_layers, ctx):
        """Ports: alexnet-2012/layer.py:827-871 parse"""
        dic = super().parse(name, mcp, prev_layers, ctx)
        dic["requiresParams"] = True
        dic["gradConsumer"] = True
        dic["usesActs"] = False
        if not mcp.has_option(name, "initW"):  # the original's scalar default fails its list parse
            self.fail("initW", "required parameter missing (a ','-delimited list of floats, one per input)")
        dic["initW"] = mcp.safe_get_float_list(name, "initW")
        dic["initB"] = mcp.safe_get_float(name, "initB", default=0.0)
        dic["initWFunc"] = mcp.safe_get(name, "initWFunc", default="")
        dic["initBFunc"] = mcp.safe_get(name, "initBFunc", default="")
        dic["weightSource"] = mcp.safe_get_list(name, "weightSource", default=[""] * len(dic["inputs"]))
        self.verify_num_params(["initW", "weightSource"])
        dic["weightSourceLayers"], dic["weightSourceMatrixIndices"] = [], []
        for i, src_name in enumerate(dic["weightSource"]):
            idx, src_layer_name = -1, ""
            if src_name != "":
                match = get_layer_name(src_name)
                if match is None:
                    self.fail("weightSource", f"unable to parse weight sharing source '{src_name}'. Format is"
                                              " layer[idx] or just layer, in which case idx=0 is used")
                src_layer_name = match[0]
                idx = match[1] if match[1] is not None else 0
                if src_layer_name not in prev_layers and src_layer_name != name:
                    self.fail("weightSource", f"weight sharing source layer '{src_layer_name}' does not exist")
                src = prev_layers[src_layer_name] if src_layer_name != name else dic
                if src["gpu"] != dic["gpu"]:
                    self.fail("weightSource", f"weight sharing source layer '{src_layer_name}' runs on GPU"
                                              f" {src['gpu']}, while '{name}' runs on GPU {dic['gpu']}")
                if src["type"] != dic["type"]:
                    self.fail("weightSource", f"weight sharing source layer '{src_layer_name}' is of type"
                                              f" '{src['type']}'; should be '{dic['type']}'")
                if src_layer_name != name and len(src["inputs"]) <= idx:
                    self.fail("weightSource", f"weight sharing source layer '{src_layer_name}' has"
                                              f" {len(src['inputs'])} weight matrices, but '{src_name}' requested")
                if src_layer_name == name and idx >= i:
                    self.fail("weightSource", f"weight sharing source '{name}[{idx}]' not defined yet")
            dic["weightSourceLayers"].append(src_layer_name)
            dic["weightSourceMatrixIndices"].append(idx)
        return dic


class FCLayerParser(WeightLayerParser):
    """``fc``: y = Σᵢ Wᵢᵀxᵢ + b. Keys: ``outputs``, ``weightsPerFilter`` (= ``numInputs``);
    weights ``(numInputs[i], outputs)`` and biases ``(1, outputs)``, Fortran order.

    Ports: alexnet-2012/layer.py:873-886 FCLayerParser
    """

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        dic["outputs"] = mcp.safe_get_int(name, "outputs")
        dic["weightsPerFilter"] = dic["numInputs"]
        self.verify_num_range(dic["outputs"], "outputs", 1, None)
        self.check_shared_shapes()
        self.make_weights(dic["initW"], dic["numInputs"], [dic["outputs"]] * len(dic["numInputs"]), order="F")
        self.make_biases(1, dic["outputs"], order="F")
        self.log(f"Initialized fully-connected layer '{name}' on GPU {dic['gpu']}, producing {dic['outputs']} outputs")
        return dic


class TreeFCLayerParser(WeightLayerParser):
    """``treefc``: fc over a class tree. Keys: ``tree`` (the provider's list of child lists;
    None when not given and ``init_weights=False``), ``rootLabel``, ``outputs`` = classes,
    ``weightsPerFilter``; weights ``(numInputs[0], len(tree))`` with non-leaf columns zeroed.

    Ports: alexnet-2012/layer.py:888-908 TreeFCLayerParser
    """

    def __init__(self):
        super().__init__(num_inputs=1)

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        if ctx.tree is None and ctx.init_weights:
            self.fail("type", "treefc needs the data provider's class tree (options 'tree' and 'root_label')")
        if ctx.num_classes is None:
            self.fail("type", "treefc needs the data provider's number of classes (option 'num_classes')")
        dic["tree"] = list(ctx.tree) if ctx.tree is not None else None
        dic["rootLabel"] = ctx.root_label
        if len(set(dic["weightSourceLayers"])) > 1 or dic["weightSourceLayers"][0] != "":
            self.fail("weightSource", "weight sharing not allowed in tree-fc layers")
        dic["outputs"] = ctx.num_classes
        dic["weightsPerFilter"] = dic["numInputs"]
        if ctx.init_weights:
            self.make_weights(dic["initW"], dic["numInputs"], [len(dic["tree"])], order="F")
            dic["weights"][0][:, ctx.num_classes:] = 0
        self.make_biases(1, dic["outputs"], order="F")
        self.log(f"Initialized tree-fc layer '{name}' on GPU {dic['gpu']}, producing {dic['outputs']} outputs")
        return dic


class LocalLayerParser(WeightLayerParser):
    """The common part of ``conv`` and ``local`` (per input lists unless noted).

    Def-file keys: ``channels``, ``padding`` (0; stored *negated*, as the kernels take the
    start offset), ``stride`` (1), ``filterSize``, ``filters`` (int: cfg filters × groups),
    ``groups`` (1), ``randSparse`` (False), ``filterChannels`` (channels/groups, or the cfg list
    when any input is randSparse), ``initCFunc``; computed ``imgPixels``, ``imgSize``,
    ``filterPixels``, ``modulesX`` (int, 1 + ⌈(2·pad + img − fs)/stride⌉), ``modules``,
    ``outputs``, ``filterConns`` (per input: [] or the randSparse channel list of length
    overSample·channels), ``overSample``, ``weightsPerFilter`` (fc·fs²).

    Ports: alexnet-2012/layer.py:910-1045 LocalLayerParser
    """

    def gen_rand_conns(self, groups, channels, filter_channels, input_idx):
        """Ports: alexnet-2012/layer.py:948-972 gen_rand_conns"""
        dic = self.dic
        over_sample = groups * filter_channels // channels
        check_bytes(self, 40 * over_sample * channels, f"the random connectivity of input {input_idx}"
                         f" ({over_sample}x{channels} channel indices)", always=True)
        conns = [int(x) for _ in range(over_sample) for x in self.ctx.rng.permutation(channels)]
        if dic["initCFunc"]:
            if not self.ctx.init_weights:
                return None
            conns = self.call_init_func("initCFunc", (groups, channels, filter_channels), input_idx=input_idx)
            where = f" (input {input_idx})"
            if len(conns) != over_sample * channels:
                self.fail("initCFunc", f"random connectivity initialization function {dic['initCFunc']} must"
                          f" return list of length <groups> * <filterChannels> = {over_sample * channels};"
                          f" got: {len(conns)}{where}")
            if any(c not in range(channels) for c in conns):
                self.fail("initCFunc", f"random connectivity initialization function {dic['initCFunc']} must"
                          f" return channel indices in the range 0-{channels - 1}{where}")
            if any(len(set(conns[o * channels:(o + 1) * channels])) != channels for o in range(over_sample)):
                self.fail("initCFunc", f"random connectivity initialization function {dic['initCFunc']} must"
                          f" return a list whose every sub-list of {channels} elements is a permutation of"
                          f" 0-{channels - 1}{where}")
        elif dic["weightSourceLayers"][input_idx] != "":
            src_name = dic["weightSourceLayers"][input_idx]
            src = self.prev_layers[src_name] if src_name != dic["name"] else dic
            j = dic["weightSourceMatrixIndices"][input_idx]
            if not src.get("randSparse") or not src["randSparse"][j]:
                self.fail("randSparse", f"randSparse is true in this layer (input {input_idx}) but false in"
                                        f" weight sharing source layer '{src['name']}[{j}]'")
            mine = (groups, channels, filter_channels)
            theirs = (src["groups"][j], src["channels"][j], src["filterChannels"][j])
            if mine != theirs:
                self.fail("weightSource", f"groups, channels, filterChannels set to {mine} (input {input_idx});"
                          f" does not match weight sharing source layer '{src['name']}[{j}]': {theirs}")
            conns = src["filterConns"][j]
        return conns

    def parse(self, name, mcp, prev_layers, ctx):
        """Ports: alexnet-2012/layer.py:974-1045 parse"""
        dic = super().parse(name, mcp, prev_layers, ctx)
        n_in = len(dic["inputs"])
        dic["requiresParams"] = True
        dic["usesActs"] = False
        dic["channels"] = mcp.safe_get_int_list(name, "channels")
        dic["padding"] = mcp.safe_get_int_list(name, "padding", default=[0] * n_in)
        dic["stride"] = mcp.safe_get_int_list(name, "stride", default=[1] * n_in)
        dic["filterSize"] = mcp.safe_get_int_list(name, "filterSize")
        dic["filters"] = mcp.safe_get_int_list(name, "filters")
        dic["groups"] = mcp.safe_get_int_list(name, "groups", default=[1] * n_in)
        dic["randSparse"] = mcp.safe_get_bool_list(name, "randSparse", default=[False] * n_in)
        dic["initW"] = mcp.safe_get_float_list(name, "initW")
        dic["initCFunc"] = mcp.safe_get(name, "initCFunc", default="")
        self.verify_num_params(["channels", "padding", "stride", "filterSize", "filters", "groups",
                                "randSparse", "initW"])
        self.verify_num_range(dic["stride"], "stride", 1, None)
        self.verify_num_range(dic["filterSize"], "filterSize", 1, None)
        self.verify_num_range(dic["padding"], "padding", 0, None)
        self.verify_num_range(dic["channels"], "channels", 1, None)
        self.verify_num_range(dic["groups"], "groups", 1, None)
        self.verify_num_range(dic["filters"], "filters", 1, None)
        for i, (st, fs) in enumerate(zip(dic["stride"], dic["filterSize"])):
            if st > fs:  # Port-only: refused; filter_acts.cu asserts moduleStride <= filterSize
                self.fail("stride", f"must not exceed filterSize ({fs}) (input {i}), got {st}")

        dic["imgPixels"] = [ni // c for ni, c in zip(dic["numInputs"], dic["channels"])]
        dic["imgSize"] = [math.isqrt(p) for p in dic["imgPixels"]]
        self.verify_num_range(dic["imgSize"], "imgSize", 1, None)
        dic["filters"] = [f * g for f, g in zip(dic["filters"], dic["groups"])]
        dic["filterPixels"] = [fs ** 2 for fs in dic["filterSize"]]
        dic["modulesX"] = [1 + -(-(2 * p + img - fs) // s)  # 1 + ceil(...), exact for any int
                           for p, img, fs, s in zip(dic["padding"], dic["imgSize"], dic["filterSize"], dic["stride"])]
        dic["filterChannels"] = [c // g for c, g in zip(dic["channels"], dic["groups"])]
        if max(dic["randSparse"]):
            dic["filterChannels"] = mcp.safe_get_int_list(name, "filterChannels", default=dic["filterChannels"])
            self.verify_num_params(["filterChannels"])
            self.verify_num_range(dic["filterChannels"], "filterChannels", 1, None)
        if len(set(dic["modulesX"])) != 1 or len(set(dic["filters"])) != 1:
            self.fail("inputs", "all inputs must produce equally-dimensioned output. Dimensions are: "
                      + ", ".join(f"{f}x{m}x{m}" for f, m in zip(dic["filters"], dic["modulesX"])))
        dic["modulesX"] = dic["modulesX"][0]
        dic["modules"] = dic["modulesX"] ** 2
        dic["filters"] = dic["filters"][0]
        dic["outputs"] = dic["modules"] * dic["filters"]
        dic["filterConns"] = [[] for _ in range(n_in)]
        for i in range(n_in):
            if dic["numInputs"][i] % dic["imgPixels"][i] != 0 or dic["imgSize"][i] ** 2 != dic["imgPixels"][i]:
                self.fail("channels", f"input {i} has {dic['numInputs'][i]}-dimensional input, not interpretable"
                                      f" as square {dic['channels'][i]}-channel images")
            if dic["channels"][i] > 3 and dic["channels"][i] % 4 != 0:
                self.fail("channels", f"number of channels must be smaller than 4 or divisible by 4 (input {i})")
            if dic["filterSize"][i] > 2 * dic["padding"][i] + dic["imgSize"][i]:
                self.fail("filterSize", f"filter size ({dic['filterSize'][i]}) greater than image size + 2 *"
                          f" padding ({2 * dic['padding'][i] + dic['imgSize'][i]}) (input {i})")
            if dic["randSparse"][i]:
                if dic["groups"][i] == 1:
                    self.fail("groups", f"number of groups must be greater than 1 when using random sparse"
                                        f" connectivity (input {i})")
                self.verify_divisible(dic["channels"][i], dic["filterChannels"][i], "channels", "filterChannels", i)
                self.verify_divisible(dic["filterChannels"][i], 4, "filterChannels", None, i)
                self.verify_divisible(dic["groups"][i] * dic["filterChannels"][i], dic["channels"][i],
                                      "groups * filterChannels", "channels", i, key="filterChannels")
                dic["filterConns"][i] = self.gen_rand_conns(dic["groups"][i], dic["channels"][i],
                                                            dic["filterChannels"][i], i)
            else:
                if dic["groups"][i] > 1:
                    self.verify_divisible(dic["channels"][i], 4 * dic["groups"][i], "channels", "4 * groups", i)
                self.verify_divisible(dic["channels"][i], dic["groups"][i], "channels", "groups", i)
            self.verify_divisible(dic["filters"], 16 * dic["groups"][i], "filters * groups", None, i, key="filters")
            dic["padding"][i] = -dic["padding"][i]
        dic["overSample"] = [g * fc // c for g, fc, c in zip(dic["groups"], dic["filterChannels"], dic["channels"])]
        dic["weightsPerFilter"] = [fc * fs ** 2 for fc, fs in zip(dic["filterChannels"], dic["filterSize"])]
        return dic


class ConvLayerParser(LocalLayerParser):
    """``conv``: weights shared over modules. Keys beyond :class:`LocalLayerParser`'s:
    ``partialSum`` (required, 0 or a divisor of modules), ``sharedBiases`` (True); weights
    ``(filterPixels·filterChannels, filters)`` per input, C order; biases ``(filters, 1)``, or
    ``(filters·modules, 1)`` without sharedBiases. Params file adds ``wcNormMax``/``wcNormMin`` (0).

    Ports: alexnet-2012/layer.py:1047-1076 ConvLayerParser
    """

    def add_params(self, mcp):
        super().add_params(mcp)
        dic, name = self.dic, self.dic["name"]
        dic["wcNormMax"] = mcp.safe_get_float_list(name, "wcNormMax", default=[0.0] * len(dic["inputs"]))
        dic["wcNormMin"] = mcp.safe_get_float_list(name, "wcNormMin", default=[0.0] * len(dic["inputs"]))
        self.verify_num_params(["wcNormMax", "wcNormMin"])
        for lo, hi in zip(dic["wcNormMin"], dic["wcNormMax"]):
            if lo > hi:
                self.fail("wcNormMin", "wcNormMin must be <= wcNormMax")

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        dic["partialSum"] = mcp.safe_get_int(name, "partialSum")
        dic["sharedBiases"] = mcp.safe_get_bool(name, "sharedBiases", default=True)
        # Port-only: a negative partialSum refused (the weight-gradient kernel needs it >= 0).
        self.verify_num_range(dic["partialSum"], "partialSum", 0, None)
        if dic["partialSum"] != 0 and dic["modules"] % dic["partialSum"] != 0:
            self.fail("partialSum", f"convolutional layer produces {dic['modulesX']}x{dic['modulesX']}="
                      f"{dic['modules']} outputs per filter, but given partialSum parameter"
                      f" ({dic['partialSum']}) does not divide this number")
        num_biases = dic["filters"] if dic["sharedBiases"] else dic["modules"] * dic["filters"]
        rows = [fp * fc for fp, fc in zip(dic["filterPixels"], dic["filterChannels"])]
        self.check_shared_shapes()
        self.make_weights(dic["initW"], rows, [dic["filters"]] * len(dic["inputs"]), order="C")
        self.make_biases(num_biases, 1, order="C")
        self.log(f"Initialized convolutional layer '{name}' on GPU {dic['gpu']}, producing "
                 f"{dic['modulesX']}x{dic['modulesX']} {dic['filters']}-channel output")
        return dic


class LocalUnsharedLayerParser(LocalLayerParser):
    """``local``: a separate filter bank per module. Weights ``(modules·filterPixels·filterChannels,
    filters)`` per input, C order; biases ``(modules·filters, 1)``.

    Ports: alexnet-2012/layer.py:1078-1090 LocalUnsharedLayerParser
    """

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        rows = [dic["modules"] * fp * fc for fp, fc in zip(dic["filterPixels"], dic["filterChannels"])]
        self.check_shared_shapes()
        self.make_weights(dic["initW"], rows, [dic["filters"]] * len(dic["inputs"]), order="C")
        self.make_biases(dic["modules"] * dic["filters"], 1, order="C")
        self.log(f"Initialized locally-connected layer '{name}' on GPU {dic['gpu']}, producing "
                 f"{dic['modulesX']}x{dic['modulesX']} {dic['filters']}-channel output")
        return dic


class DataLayerParser(LayerParser):
    """``data``: one matrix of the provider's minibatch. Keys: ``dataIdx``, ``outputs`` (its size).

    Ports: alexnet-2012/layer.py:1092-1102 DataLayerParser
    """

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        dic["dataIdx"] = mcp.safe_get_int(name, "dataIdx")
        try:
            dims = ctx.data_dims(dic["dataIdx"]) if ctx.data_dims is not None else None
        except (IndexError, KeyError, ValueError, TypeError):
            dims = None
        if dims is None:
            self.fail("dataIdx", f"the data provider has no data matrix {dic['dataIdx']}")
        dic["outputs"] = int(dims)
        self.log(f"Initialized data layer '{name}', producing {dic['outputs']} outputs")
        return dic


class SoftmaxLayerParser(LayerWithInputParser):
    """``softmax``: ``outputs`` = the input's.

    Ports: alexnet-2012/layer.py:1104-1112 SoftmaxLayerParser
    """

    def __init__(self):
        super().__init__(num_inputs=1)

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        dic["outputs"] = dic["inputLayers"][0]["outputs"]
        self.log(f"Initialized softmax layer '{name}' on GPU {dic['gpu']}, producing {dic['outputs']} outputs")
        return dic


class ConcatentionLayerParser(LayerWithInputParser):
    """``concat``: stacks its inputs' rows. Keys: ``outputs`` (the sum), ``copyOffsets`` (row
    offset of each input). (The class name keeps the original's spelling.)

    Ports: alexnet-2012/layer.py:1114-1123 ConcatentionLayerParser
    """

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        dic["outputs"] = sum(l["outputs"] for l in dic["inputLayers"])
        dic["copyOffsets"] = [sum(dic["inputLayers"][j]["outputs"] for j in range(i))
                              for i in range(len(dic["inputLayers"]))]
        self.log(f"Initialized concatenation layer '{name}' on GPU {dic['gpu']}, producing {dic['outputs']} outputs")
        return dic


class PoolLayerParser(LayerWithInputParser):
    """``pool``. Keys: ``channels``, ``sizeX`` (1..img), ``start`` (0), ``stride`` (1..sizeX),
    ``outputsX`` (0 = ⌈(img − start − sizeX)/stride⌉ + 1), ``pool`` ∈ max/maxabs/avg/rand,
    ``imgPixels``, ``imgSize``; ``requiresParams`` for rand, whose params section gives ``doMax``.
    ``usesActs``/``usesInputs`` are always True: the original compares the literal ``'pool'``
    with ``'avg'``.

    Ports: alexnet-2012/layer.py:1125-1168 PoolLayerParser
    """

    def __init__(self):
        super().__init__(num_inputs=1)

    def add_params(self, mcp):
        super().add_params(mcp)
        if self.dic["pool"] == "rand":
            self.dic["doMax"] = mcp.safe_get_bool(self.dic["name"], "doMax", default=False)

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        dic["channels"] = mcp.safe_get_int(name, "channels")
        dic["sizeX"] = mcp.safe_get_int(name, "sizeX")
        dic["start"] = mcp.safe_get_int(name, "start", default=0)
        dic["stride"] = mcp.safe_get_int(name, "stride")
        dic["outputsX"] = mcp.safe_get_int(name, "outputsX", default=0)
        dic["pool"] = mcp.safe_get(name, "pool")
        dic["requiresParams"] = dic["pool"] == "rand"
        dic["usesActs"] = "pool" != "avg"  # sic: always True, as the original
        dic["usesInputs"] = "pool" != "avg"
        dic["imgPixels"], dic["imgSize"] = _img_pixels(self, dic["channels"])
        self.verify_num_range(dic["sizeX"], "sizeX", 1, dic["imgSize"])
        self.verify_num_range(dic["stride"], "stride", 1, dic["sizeX"])
        self.verify_num_range(dic["outputsX"], "outputsX", 0, None)
        self.verify_num_range(dic["channels"], "channels", 1, None)
        if LayerWithInputParser.grad_consumers_below(dic):
            self.verify_divisible(dic["channels"], 16, "channels")
        self.verify_str_in(dic["pool"], "pool", ["max", "maxabs", "avg", "rand"])
        self.verify_img_size()
        # DIVERGES: a window must start inside the image, or overlap it by one pixel from the left
        # (the original took any start and, past the image, built a layer of negative size).
        self.verify_num_range(dic["start"], "start", 1 - dic["sizeX"], dic["imgSize"] - 1)
        if dic["outputsX"] <= 0:
            dic["outputsX"] = -(-(dic["imgSize"] - dic["start"] - dic["sizeX"]) // dic["stride"]) + 1
        dic["outputs"] = dic["outputsX"] ** 2 * dic["channels"]
        self.log(f"Initialized {dic['pool']}-pooling layer '{name}' on GPU {dic['gpu']}, producing "
                 f"{dic['outputsX']}x{dic['outputsX']} {dic['channels']}-channel output")
        return dic


class NormLayerParser(LayerWithInputParser):
    """``rnorm``, ``cnorm``, ``cmrnorm``. Def keys: ``channels``, ``size``, ``blocked`` (False),
    ``imgPixels``, ``imgSize``; ``usesInputs`` False for cnorm. Params keys: ``scale`` (stored
    divided by size for cmrnorm, by size² otherwise), ``pow``, and for cmrnorm ``minDiv`` (1.0).

    Ports: alexnet-2012/layer.py:1170-1216 NormLayerParser
    """
    RESPONSE_NORM = "response"
    CONTRAST_NORM = "contrast"
    CROSSMAP_RESPONSE_NORM = "cross-map response"

    def __init__(self, norm_type):
        super().__init__(num_inputs=1)
        self.norm_type = norm_type

    def add_params(self, mcp):
        super().add_params(mcp)
        dic, name = self.dic, self.dic["name"]
        if "scale2011" in dic and not mcp.has_option(name, "scale"):
            dic["scale"], dic["pow"] = dic["scale2011"], dic["pow2011"]   # see parse_2011
        else:
            dic["scale"] = mcp.safe_get_float(name, "scale")
            dic["pow"] = mcp.safe_get_float(name, "pow")
        dic["scale"] /= dic["size"] if self.norm_type == self.CROSSMAP_RESPONSE_NORM else dic["size"] ** 2
        if self.norm_type == self.CROSSMAP_RESPONSE_NORM:
            dic["minDiv"] = mcp.safe_get_float(name, "minDiv", default=1.0)

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        dic["requiresParams"] = True
        dic["channels"] = mcp.safe_get_int(name, "channels")
        if not mcp.has_option(name, "size") and mcp.has_option(name, "sizeX"):
            self.parse_2011(mcp)
        else:
            dic["size"] = mcp.safe_get_int(name, "size")
        dic["blocked"] = mcp.safe_get_bool(name, "blocked", default=False)
        dic["imgPixels"], dic["imgSize"] = _img_pixels(self, dic["channels"])
        dic["usesInputs"] = self.norm_type != self.CONTRAST_NORM
        self.verify_num_range(dic["channels"], "channels", 1, None)
        if self.norm_type == self.CROSSMAP_RESPONSE_NORM:
            self.verify_num_range(dic["size"], "size", 2, dic["channels"])
            if dic["channels"] % 16 != 0:
                self.fail("channels", "number of channels must be divisible by 16 when using crossMap")
        else:
            self.verify_num_range(dic["size"], "size", 1, dic["imgSize"])
        if self.norm_type != self.CROSSMAP_RESPONSE_NORM and dic["channels"] > 3 and dic["channels"] % 4 != 0:
            self.fail("channels", "number of channels must be smaller than 4 or divisible by 4")
        # Port-only: the channel counts conv_util.cu's normalization kernels assert, refused here.
        if self.norm_type != self.CROSSMAP_RESPONSE_NORM:
            if dic["channels"] > 8 and dic["channels"] % 16 != 0:
                self.fail("channels", f"number of channels must be at most 8 or divisible by 16 (the"
                                      f" normalization kernel's rule), got {dic['channels']}")
            if LayerWithInputParser.grad_consumers_below(dic) and dic["channels"] % 16 != 0:
                self.fail("channels", f"number of channels must be divisible by 16 above layers with"
                                      f" parameters (the gradient kernel's rule), got {dic['channels']}")
        self.verify_img_size()
        dic["outputs"] = dic["imgPixels"] * dic["channels"]
        self.log(f"Initialized {self.norm_type}-normalization layer '{name}' on GPU {dic['gpu']}, producing "
                 f"{dic['imgSize']}x{dic['imgSize']} {dic['channels']}-channel output")
        return dic


    def parse_2011(self, mcp):
        """The 2011 form of rnorm/cnorm: the window is ``sizeX`` and ``scale``/``pow`` are in the
        def file (example-layers/layers-18pct.cfg and layers-example.cfg are svn copies of that
        time). The svn parser read ``sizeX``, ``scale`` and ``pow`` from the def file until
        2012-03-13 (dnouri/cuda-convnet 3878e8f renamed the key ``size``) and took ``scale``/``pow``
        from the params file from 2012-06-08 on (35d0bc4); the 2012 parser refuses them.

        DIVERGES: read here, as the 2011 parser read them: ``size`` = ``sizeX``, and
        ``scale``/``pow`` from the def file unless the params file gives them (the layer then needs
        no params section); the scale is divided by size² in both forms.
        """
        dic, name = self.dic, self.dic["name"]
        dic["size"] = mcp.safe_get_int(name, "sizeX")
        if mcp.has_option(name, "scale") and mcp.has_option(name, "pow"):
            dic["scale2011"] = mcp.safe_get_float(name, "scale")
            dic["pow2011"] = mcp.safe_get_float(name, "pow")
            dic["requiresParams"] = False
        self.log(f"Layer '{name}': read the 2011 keys sizeX/scale/pow (DIVERGES from the 2012 parser)")


class CostParser(LayerWithInputParser):
    """Costs: ``requiresParams``; no ``neuron`` key; params file gives ``coeff``.

    Ports: alexnet-2012/layer.py:1218-1231 CostParser
    """

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        dic["requiresParams"] = True
        del dic["neuron"]
        return dic

    def add_params(self, mcp):
        super().add_params(mcp)
        self.dic["coeff"] = mcp.safe_get_float(self.dic["name"], "coeff")

    def check_classes(self, i, what):
        """Input ``i`` must have one row per class of the data set.

        Ports: alexnet-2012/layer.py:1264-1268 get_num_classes
        """
        n = self.ctx.classes(self.dic["numInputs"][i])
        if self.dic["numInputs"][i] != n:
            self.fail("inputs", f"{what} '{self.dic['inputs'][i]}' must produce {n} outputs, because that"
                                f" is the number of classes in the dataset (got {self.dic['numInputs'][i]})")


class CrossEntCostParser(CostParser):
    """``cost.crossent``: inputs (label distribution, softmax), both of size classes.

    Ports: alexnet-2012/layer.py:1233-1248 CrossEntCostParser
    """

    def __init__(self):
        super().__init__(num_inputs=2)

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        self.check_classes(0, "first input (labels)")
        if dic["inputLayers"][1]["type"] != "softmax":
            self.fail("inputs", "second input must be softmax layer")
        self.check_classes(1, "softmax input")
        self.log(f"Initialized cross-entropy cost '{name}' on GPU {dic['gpu']}")
        return dic


class LogregCostParser(CostParser):
    """``cost.logreg``: inputs (labels of size 1, softmax of size classes); params ``topk`` (1).

    Ports: alexnet-2012/layer.py:1250-1271 LogregCostParser
    """

    def __init__(self):
        super().__init__(num_inputs=2)

    def add_params(self, mcp):
        super().add_params(mcp)
        self.dic["topk"] = mcp.safe_get_int(self.dic["name"], "topk", default=1)

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        dic["requiresParams"] = True
        if dic["numInputs"][0] != 1:
            self.fail("inputs", f"dimensionality of first input must be 1, got {dic['numInputs'][0]}")
        if dic["inputLayers"][1]["type"] != "softmax":
            self.fail("inputs", "second input must be softmax layer")
        self.check_classes(1, "softmax input")
        self.log(f"Initialized logistic regression cost '{name}' on GPU {dic['gpu']}")
        return dic


class FlickrBaseCost(CostParser):
    """``cost.crossent2`` and ``cost.rflickr``: both inputs of size classes; warns when the
    second is not a logistic layer.

    Ports: alexnet-2012/layer.py:1273-1295 FlickrBaseCost
    """

    def __init__(self, cost_name):
        super().__init__(num_inputs=2)
        self.cost_name = cost_name

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        for i in range(2):
            self.check_classes(i, "input")
        if dic["inputLayers"][1].get("neuron") != "logistic":
            warnings.warn(f"{self.path}: [{name}]: input '{dic['inputs'][1]}' is not logistic, results may"
                          " not be what you intend", stacklevel=2)
        self.log(f"Initialized {self.cost_name} cost '{name}' on GPU {dic['gpu']}")
        return dic


class MultiSoftmaxCostParser(CostParser):
    """``cost.msm``: inputs (labels of size 1, energies of size classes); ``numOut``; params
    ``setSize`` (1..numOut−1) and ``threads`` (1..32).

    Ports: alexnet-2012/layer.py:1298-1321 MultiSoftmaxCostParser
    """

    def __init__(self):
        super().__init__(num_inputs=2)

    def add_params(self, mcp):
        super().add_params(mcp)
        dic, name = self.dic, self.dic["name"]
        dic["setSize"] = mcp.safe_get_int(name, "setSize")
        dic["threads"] = mcp.safe_get_int(name, "threads")
        self.verify_num_range(dic["setSize"], "setSize", 1, dic["numOut"] - 1)
        self.verify_num_range(dic["threads"], "threads", 1, 32)

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        if dic["numInputs"][0] != 1:
            self.fail("inputs", f"dimensionality of first input must be 1, got {dic['numInputs'][0]}")
        self.check_classes(1, "input")
        dic["numOut"] = dic["numInputs"][1]
        self.log(f"Initialized multi-softmax cost '{name}' on GPU {dic['gpu']}")
        return dic


class SumOfSquaresCostParser(CostParser):
    """``cost.sum2``: one input.

    Ports: alexnet-2012/layer.py:1323-1330 SumOfSquaresCostParser
    """

    def __init__(self):
        super().__init__(num_inputs=1)

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        self.log(f"Initialized sum-of-squares cost '{name}' on GPU {dic['gpu']}")
        return dic


class GatedSumOfSquaresCostParser(CostParser):
    """``cost.gsum2``: inputs (gate of size 1, x).

    Ports: alexnet-2012/layer.py:1332-1342 GatedSumOfSquaresCostParser
    """

    def __init__(self):
        super().__init__(num_inputs=2)

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        self.verify_input_dims([1, None])
        self.log(f"Initialized gated sum-of-squares cost '{name}' on GPU {dic['gpu']}")
        return dic


class TICACostParser(CostParser):
    """``cost.tica``: keys ``channels``, ``sizeX``, ``imgPixels``, ``imgSize``.

    Ports: alexnet-2012/layer.py:1344-1360 TICACostParser
    """

    def __init__(self):
        super().__init__(num_inputs=1)

    def parse(self, name, mcp, prev_layers, ctx):
        dic = super().parse(name, mcp, prev_layers, ctx)
        dic["channels"] = mcp.safe_get_int(name, "channels")
        dic["sizeX"] = mcp.safe_get_int(name, "sizeX")
        dic["imgPixels"], dic["imgSize"] = _img_pixels(self, dic["channels"])
        self.verify_img_size()
        # Port-only: the channel counts the TICA kernel asserts, refused here with one line.
        if dic["channels"] <= 8 or dic["channels"] % 16 != 0:
            self.fail("channels", f"must be a multiple of 16 (the TICA kernel's rule), got {dic['channels']}")
        self.verify_num_range(dic["sizeX"], "sizeX", 1, 5)
        self.log(f"Initialized TICA cost '{name}' on GPU {dic['gpu']}")
        return dic


#: cfg type string → parser factory (the original's ``layer_parsers``).
LAYER_PARSERS: dict[str, Callable[[], LayerParser]] = {
    "data": DataLayerParser,
    "fc": FCLayerParser,
    "treefc": TreeFCLayerParser,
    "conv": ConvLayerParser,
    "local": LocalUnsharedLayerParser,
    "softmax": SoftmaxLayerParser,
    "eltsum": EltwiseSumLayerParser,
    "eltmax": EltwiseMaxLayerParser,
    "neuron": NeuronLayerParser,
    "pool": PoolLayerParser,
    "rnorm": lambda: NormLayerParser(NormLayerParser.RESPONSE_NORM),
    "cnorm": lambda: NormLayerParser(NormLayerParser.CONTRAST_NORM),
    "cmrnorm": lambda: NormLayerParser(NormLayerParser.CROSSMAP_RESPONSE_NORM),
    "nailbed": NailbedLayerParser,
    "blur": GaussianBlurLayerParser,
    "href": HorizontalReflectionLayerParser,
    "resize": ResizeLayerParser,
    "rgb2yuv": ColorTransformLayerParser,
    "rgb2lab": RGBToLABLayerParser,
    "rscale": RandomScaleLayerParser,
    "concat": ConcatentionLayerParser,
    "hs": HiddenSexLayerParser,
    "cost.logreg": LogregCostParser,
    "cost.msm": MultiSoftmaxCostParser,
    "cost.crossent": CrossEntCostParser,
    "cost.crossent2": lambda: FlickrBaseCost("elementwise cross-entropy"),
    "cost.sum2": SumOfSquaresCostParser,
    "cost.gsum2": GatedSumOfSquaresCostParser,
    "cost.tica": TICACostParser,
    "cost.rflickr": lambda: FlickrBaseCost("robust Flickr"),
}


# ---- The whole net --------------------------------------------------------------------------

def _parse_def(mcp: MyConfigParser, ctx: ParseContext) -> dict:
    """Parse every section of a def file, spawn neuron layers, check that every layer is used.

    Ports: alexnet-2012/layer.py:278-305 parse_layers
    """
    layers: dict[str, dict] = {}
    ctx.sections = mcp.sections()
    if not ctx.sections:
        raise ConfigError(mcp.path, None, None, "no layers defined")
    for name in ctx.sections:
        if not mcp.has_option(name, "type"):
            raise ConfigError(mcp.path, name, "type", "no type given")
        ltype = mcp.safe_get(name, "type")
        if ltype not in LAYER_PARSERS:
            raise ConfigError(mcp.path, name, "type", f"unknown layer type '{ltype}'; expected one of "
                              + ", ".join(sorted(LAYER_PARSERS)))
        parser = LAYER_PARSERS[ltype]()
        layers[name] = parser.parse(name, mcp, layers, ctx)
        check_memory(parser)
    detach_neuron_layers(layers, ctx)
    for l in layers.values():
        LAYER_PARSERS[l["type"]]().init(l, ctx).optimize(layers)
    consumed = {inp for l in layers.values() for inp in l.get("inputs", [])}
    for name, l in layers.items():
        if not l["type"].startswith("cost.") and name not in consumed:
            section = l.get("src_layer", name)
            raise ConfigError(mcp.path, section, None, f"layer '{name}' of type '{l['type']}' is unused"
                              " (no layer takes it as input)")
    return layers


def check_saved_layers(layers, where="the checkpoint") -> None:
    """A resumed net's saved layers, checked before any is used against this parser's layer types
    (:func:`port.cfg_checks.check_saved_layers`, which cannot import the registry)."""
    cfg_checks.check_saved_layers(layers, where, LAYER_PARSERS)


def conv_to_local(layers: dict, name: str) -> dict:
    """Turn conv layer ``name`` into an unshared ``local`` layer: its weights are tiled once per
    module (row m·R + r = W[r]) and shared biases repeated per module (row f·modules + m). A
    matrix shared from another conv layer converts that layer first; layers sharing this one's
    weights are converted too. A non-conv layer is left as it is.

    Ports: alexnet-2012/layer.py:914-944 conv_to_local
    DIVERGES: works on the layers dict by name; the 2012 code still indexes a list, and its caller
    (alexnet-2012/convnet.py:45-48) enumerates the dict, so ``--conv-to-local`` could not run there.
    """
    layer = layers[name]
    if layer["type"] != "conv":
        return layer
    layer["type"] = "local"
    has_w = "weights" in layer
    for inp in range(len(layer["inputs"])):
        src_name = layer["weightSourceLayers"][inp]
        if src_name != "":
            src = layers[src_name]
            j = layer["weightSourceMatrixIndices"][inp]
            conv_to_local(layers, src_name)
            if has_w:
                for w in ("weights", "weightsInc"):
                    layer[w][inp] = src[w][j]
        elif has_w:
            w = layer["weights"][inp]  # (fc·fs², F)
            rows = layer["modules"] * layer["filterChannels"][inp] * layer["filterPixels"][inp]
            layer["weights"][inp] = np.require(np.tile(w.reshape(1, w.size), (layer["modules"], 1))
                                               .reshape(rows, layer["filters"]), requirements="C")  # (modules·fc·fs², F)
            layer["weightsInc"][inp] = np.zeros_like(layer["weights"][inp])
    if layer["sharedBiases"] and "biases" in layer:
        layer["biases"] = np.require(np.repeat(layer["biases"], layer["modules"], axis=0),
                                     requirements="C")  # (F·modules, 1)
        layer["biasesInc"] = np.zeros_like(layer["biases"])
    for other in list(layers.values()):
        if name in other.get("weightSourceLayers", []):
            conv_to_local(layers, other["name"])
    return layer


def unshare_weights(layer: dict, layers: dict, matrix_idx: int | None = None) -> list[str]:
    """Give ``layer`` its own copy of shared weight matrices (all, or input ``matrix_idx``); the
    copy starts with zero momentum. Returns the original's messages, one per matrix.

    Ports: alexnet-2012/layer.py:746-760 unshare_weights
    DIVERGES: only shared matrices are copied; the original's test ``name >= 0`` is true for every
    string in Python 2, so it also zeroed the momentum of matrices that were never shared.
    """
    msgs: list[str] = []
    if "weightSourceLayers" not in layer:
        return msgs
    n = len(layer["inputs"])
    indices = range(n) if matrix_idx is None else [matrix_idx]
    for i in indices:
        if not 0 <= i < n:
            raise ConfigError("--unshare-weights", layer["name"], None,
                              f"layer has {n} weight matrices, index {i} requested")
        src = layer["weightSourceLayers"][i]
        if src != "":
            j = layer["weightSourceMatrixIndices"][i]
            layer["weightSourceLayers"][i] = ""
            layer["weightSourceMatrixIndices"][i] = -1
            if "weights" in layer:
                layer["weights"][i] = layer["weights"][i].copy()
                layer["weightsInc"][i] = np.zeros_like(layer["weights"][i])
            msgs.append(f"Unshared weight matrix {layer['name']}[{i}] from {src}[{j}].")
        else:
            msgs.append(f"Weight matrix {layer['name']}[{i}] already unshared.")
    return msgs


def parse_layers(layer_def, layer_params=None, options: Mapping | None = None,
                 layers: dict | None = None, *, init_weights: bool = True) -> dict[str, dict]:
    """Read a net: the layer dicts of ``layer_def`` with the hyper-parameters of ``layer_params``.

    ``layers`` given (a resumed net): the saved dicts keep their architecture and weights and
    only take the params file's hyper-parameters (the def file is not read, as in the original).
    ``layer_params=None`` parses the def file only (no eps, schedules, quantizers...).
    ``init_weights=False`` draws no weights (sizes are all computed).
    Every mistake is a :class:`port.errors.ConfigError` naming file, section and key.

    Ports: alexnet-2012/layer.py:277-319 parse_layers
    """
    def_path = Path(layer_def) if layer_def is not None else None
    ctx = make_context(def_path or Path("<saved layers>"), options, init_weights)
    if layers is not None:
        check_saved_layers(layers, (options or {}).get("saved_from", "the checkpoint"))
    else:
        if def_path is None:
            raise ConfigError("<none>", None, None, "a layer definition file is needed for a new net")
        mcp = MyConfigParser(def_path, "layer definition file")
        layers = _parse_def(mcp, ctx)
        cfg_checks.warn_unknown_keys(mcp)
    if layer_params is not None:
        pcp = MyConfigParser(Path(layer_params), "layer parameter file")
        cfg_checks.warn_ignored_keys(pcp)
        for name, l in layers.items():
            if not pcp.has_section(name) and l["requiresParams"]:
                raise ConfigError(pcp.path, name, None, f"layer of type '{l['type']}' requires extra"
                                  " parameters, but none given in this file")
            LAYER_PARSERS[l["type"]]().init(l, ctx).add_params(pcp)
        cfg_checks.warn_unknown_keys(pcp, ignore={"sched"})
    for l in layers.values():
        l["conserveMem"] = ctx.conserve_mem
    return layers
