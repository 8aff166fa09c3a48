"""The original's command-line option parser (svn ``options.py``), in Python 3.

Syntax is the original's: ``--opt=value`` for long options, ``-f value`` for one-letter ones;
booleans are ``0``/``1``; ranges ``a-b`` are inclusive; lists are comma-separated. Every option is
mandatory unless it has a default or another given option *excuses* it (``-f`` excuses all).
``--help`` (or ``-h``) prints every option with its type, default and constraints.

On resume the options saved in the checkpoint are merged with the new command line
(:meth:`OptionsParser.merge_from`): options given anew win, except ``set_once`` ones, which raise.

Errors are :class:`OptionException` (a :class:`port.errors.UserError`): one line, exit 2.
This module is not the list of options (see ``port.gpumodel`` and ``port.convnet``).
"""
from __future__ import annotations

import getopt
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from port.errors import UserError


class OptionException(UserError):
    """A malformed, missing or forbidden option."""


class OptionMissingException(OptionException):
    """A mandatory option was not supplied."""


# ---------------------------------------------------------------------------------------------
# Value parsers (classes used as values, as in the original)

class OptionParser:
    """A value's parser; ``TYPE_STR`` is shown by ``--help``, ``TYPE`` is what an expression default
    must evaluate to (None: anything).

    Ports: cuda-convnet-r561/options.py:251-262 OptionParser
    """
    TYPE_STR = "value"
    TYPE: type | None = None

    @staticmethod
    def parse(value):
        return str(value)

    @staticmethod
    def to_string(value):
        return str(value)

    @classmethod
    def get_type_str(cls):
        return cls.TYPE_STR

    @classmethod
    def is_type(cls, value):
        return cls.TYPE is None or type(value) is cls.TYPE


class IntegerOptionParser(OptionParser):
    """Ports: cuda-convnet-r561/options.py:264-278 IntegerOptionParser"""
    TYPE_STR, TYPE = "int", int

    @staticmethod
    def parse(value):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise OptionException("argument is not an integer") from None


class BooleanOptionParser(OptionParser):
    """Ports: cuda-convnet-r561/options.py:280-297 BooleanOptionParser"""
    TYPE_STR, TYPE = "0/1", int

    @staticmethod
    def parse(value):
        try:
            v = int(value)
        except (TypeError, ValueError):
            v = None
        if v not in (0, 1):
            raise OptionException("argument is not a boolean (0 or 1)")
        return v

    @classmethod
    def is_type(cls, value):
        return super().is_type(value) and value in (0, 1)


class StringOptionParser(OptionParser):
    """Ports: cuda-convnet-r561/options.py:299-306 StringOptionParser"""
    TYPE_STR, TYPE = "string", str


class FloatOptionParser(OptionParser):
    """Ports: cuda-convnet-r561/options.py:308-326 FloatOptionParser"""
    TYPE_STR, TYPE = "float", float

    @staticmethod
    def parse(value):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise OptionException("argument is not a float") from None

    @staticmethod
    def to_string(value):
        return "%.6g" % value


class RangeOptionParser(OptionParser):
    """``a-b`` (inclusive) or ``a``, as a list of ints.

    DIVERGES: an empty range (``5-3``) is refused here; the original accepted it and then failed
    with an IndexError in the data provider. So is a range of more than :attr:`MAX_LENGTH`
    batches (``1-1000000000`` built a list until MemoryError) or a negative batch number; the
    length is checked before any list is built.
    Ports: cuda-convnet-r561/options.py:328-348 RangeOptionParser
    """
    TYPE_STR, TYPE = "int[-int]", list
    MAX_LENGTH = 100_000  # ten times the batches of ImageNet at 128 images a batch

    @staticmethod
    def parse(value):
        m = re.match(r"^\s*(\d+)\s*-\s*(\d+)\s*$", str(value))
        try:
            a, b = (int(m.group(1)), int(m.group(2))) if m else (int(value), int(value))
        except (TypeError, ValueError):
            raise OptionException("argument is neither an integer nor a range a-b") from None
        if a < 0:
            raise OptionException(f"batch numbers are >= 0, got {a}")
        if b < a:
            raise OptionException(f"range {value} is empty (a-b needs a <= b)")
        if b - a + 1 > RangeOptionParser.MAX_LENGTH:
            raise OptionException(f"range {value} holds {b - a + 1} batches; at most "
                                  f"{RangeOptionParser.MAX_LENGTH} are allowed")
        return list(range(a, b + 1))

    @staticmethod
    def to_string(value):
        return "%d-%d" % (value[0], value[-1])


class ListOptionParser(OptionParser):
    """A ``sepchar``-separated list; ``parsers`` is one parser (any length) or a list (fixed form).

    Ports: cuda-convnet-r561/options.py:350-397 ListOptionParser
    """
    TYPE = list

    def __init__(self, parsers, sepchar=","):
        self.parsers = parsers
        self.sepchar = sepchar

    def parse(self, value):
        values = str(value).split(self.sepchar)
        if isinstance(self.parsers, list) and len(values) != len(self.parsers):
            raise OptionException("requires %d arguments, given %d" % (len(self.parsers), len(values)))
        try:
            if isinstance(self.parsers, list):
                return [p.parse(v) for p, v in zip(self.parsers, values)]
            return [self.parsers.parse(v) for v in values]
        except OptionException:
            raise OptionException("argument is not of the form %s" % self.get_type_str()) from None

    def to_string(self, value):
        if isinstance(self.parsers, list):
            return self.sepchar.join(p.to_string(v) for p, v in zip(self.parsers, value))
        return self.sepchar.join(self.parsers.to_string(v) for v in value)

    def get_type_str(self):
        if isinstance(self.parsers, list):
            return self.sepchar.join(p.get_type_str() for p in self.parsers)
        return "%s%s..." % (self.parsers.get_type_str(), self.sepchar)


class OptionExpression:
    """A default computed from the other options' values.

    DIVERGES: the original ``eval``'d the expression string; here ``fn`` (a function of the dict of
    option values) computes it and ``expr`` is only the text shown by ``--help``.
    Ports: cuda-convnet-r561/options.py:399-417 OptionExpression
    """

    def __init__(self, expr: str, fn: Callable[[dict], Any]):
        self.expr = expr
        self.fn = fn

    def evaluate(self, options: dict):
        try:
            return self.fn(options)
        except Exception as e:
            raise OptionException("expression '%s': unable to evaluate: %s" % (self.expr, e)) from None


def _saved_value_ok(parser, value) -> bool:
    """Whether a value read back from a checkpoint is one ``parser`` could have produced."""
    if isinstance(parser, ListOptionParser):
        subs = parser.parsers if isinstance(parser.parsers, list) else [parser.parsers] * len(value) \
            if isinstance(value, list) else []
        return isinstance(value, list) and len(subs) == len(value) and all(
            _saved_value_ok(p, v) for p, v in zip(subs, value))
    if parser is RangeOptionParser:
        return (isinstance(value, list) and 0 < len(value) <= RangeOptionParser.MAX_LENGTH
                and all(type(v) is int for v in value))
    if parser is FloatOptionParser:
        return type(value) in (int, float)
    return parser.is_type(value)


# ---------------------------------------------------------------------------------------------
# Options and the parser

class Option:
    """Ports: cuda-convnet-r561/options.py:34-77 Option"""

    def __init__(self, letter, name, desc, parser, set_once, default, excuses, requires, save):
        assert name is not None
        self.letter = letter
        self.name = name
        self.desc = desc
        self.parser = parser
        self.set_once = set_once
        self.default = default
        self.excuses = excuses
        self.requires = requires
        self.save = save
        self.value = None
        self.value_given = False
        self.prefixed_letter = min(2, len(letter)) * "-" + letter

    def set_value(self, value, parse=True):
        try:
            self.value = self.parser.parse(value) if parse else value
            self.value_given = True
        except OptionException as e:
            raise OptionException("Unable to parse option %s (%s): %s" % (self.prefixed_letter, self.desc, e)) from None

    def set_default(self):
        if self.default is not None:
            self.value = self.default

    def eval_expr_default(self, env):
        if isinstance(self.default, OptionExpression) and not self.value_given:
            try:
                self.value = self.default.evaluate(env)
            except OptionException as e:
                raise OptionException("Unable to set default value for option %s (%s): %s"
                                      % (self.prefixed_letter, self.desc, e)) from None
            if not self.parser.is_type(self.value):
                raise OptionException("Unable to set default value for option %s (%s): expression result %s "
                                      "is not of right type (%s)" % (self.prefixed_letter, self.desc, self.value,
                                                                     self.parser.get_type_str()))

    def get_str_value(self, get_default_str=False):
        val = self.default if get_default_str else self.value
        if val is None:
            return ""
        if isinstance(val, OptionExpression):
            return val.expr
        return self.parser.to_string(val)


class OptionsParser:
    """All options without defaults are mandatory unless an option that excuses them is given.

    Ports: cuda-convnet-r561/options.py:79-243 OptionsParser
    """
    SORT_LETTER = 1
    SORT_DESC = 2
    SORT_EXPR_LAST = 3
    EXCLUDE_ALL = "all"

    def __init__(self, prog: str | None = None):
        self.options: dict[str, Option] = {}
        self.prog = prog  # the command shown by --help (default: the script's name)
        self.epilog = None  # text (or a function returning it) printed after the options by --help

    def add_option(self, letter, name, parser, desc, set_once=False, default=None, excuses=(), requires=(),
                   save=True):
        """``letter`` is the command-line spelling, ``name`` the attribute name.

        Ports: cuda-convnet-r561/options.py:90-120 OptionsParser.add_option
        """
        assert name not in self.options
        self.options[name] = Option(letter, name, desc, parser, set_once, default,
                                    excuses if excuses == self.EXCLUDE_ALL else list(excuses), list(requires), save)

    def set_value(self, name, value, parse=True):
        self.options[name].set_value(value, parse=parse)

    def get_value(self, name):
        return self.options[name].value

    def delete_option(self, name):
        self.options.pop(name, None)

    def parse(self, argv=None, eval_expr_defaults=False):
        """Parse ``argv`` (default ``sys.argv[1:]``); ``--help``/``-h`` prints usage and exits 0.

        Ports: cuda-convnet-r561/options.py:132-158 OptionsParser.parse
        """
        argv = list(sys.argv[1:] if argv is None else argv)
        if any(a in ("-h", "--help") for a in argv):
            self.print_usage(print_constraints=True)
            raise SystemExit(0)
        short_opt_str = "".join("%s:" % o.letter for o in self.options.values() if len(o.letter) == 1)
        long_opts = ["%s=" % o.letter for o in self.options.values() if len(o.letter) > 1]
        try:
            go, ga = getopt.getopt(argv, short_opt_str, longopts=long_opts)
        except getopt.GetoptError as e:
            raise OptionException(f"{e} (see --help)") from None
        if ga:
            raise OptionException(f"unexpected argument {ga[0]!r}; options are written --name=value (see --help)")
        dic = dict(go)
        for o in self.get_options_list(sort_order=self.SORT_EXPR_LAST):
            if o.prefixed_letter in dic:
                o.set_value(dic[o.prefixed_letter])
            else:
                excused = any(o2.prefixed_letter in dic for o2 in self.options.values()
                              if o2.excuses == self.EXCLUDE_ALL or o.name in o2.excuses)
                if not excused and o.default is None:
                    raise OptionMissingException("Option %s (%s) not supplied (see --help)"
                                                 % (o.prefixed_letter, o.desc))
                o.set_default()
            if o.prefixed_letter in dic:
                for o2 in self.get_options_list(sort_order=self.SORT_LETTER):
                    if o2.name in o.requires and o2.prefixed_letter not in dic:
                        raise OptionMissingException("Option %s (%s) requires option %s (%s)"
                                                     % (o.prefixed_letter, o.desc, o2.prefixed_letter, o2.desc))
        if eval_expr_defaults:
            self.eval_expr_defaults()
        return self.options

    def merge_from(self, op2: OptionsParser):
        """Take ``op2``'s given (or unsaved) options; a given ``set_once`` option raises.

        Ports: cuda-convnet-r561/options.py:160-170 OptionsParser.merge_from
        """
        for name in list(self.options):
            if name in op2.options and (op2.options[name].value_given or not op2.options[name].save):
                if op2.options[name].set_once and op2.options[name].value_given:
                    raise OptionException("Option %s (%s) cannot be changed"
                                          % (op2.options[name].prefixed_letter, op2.options[name].desc))
                self.options[name] = op2.options[name]
        for name in op2.options:
            if name not in self.options:
                self.options[name] = op2.options[name]

    def eval_expr_defaults(self):
        """Ports: cuda-convnet-r561/options.py:172-175 OptionsParser.eval_expr_defaults"""
        env = {name: o.value for name, o in self.options.items()}
        for o in self.options.values():
            o.eval_expr_default(env)

    def get_options_list(self, sort_order=SORT_LETTER):
        """Ports: cuda-convnet-r561/options.py:180-189 OptionsParser.get_options_list"""
        if sort_order == self.SORT_LETTER:
            key = lambda o: o.letter  # noqa: E731
        elif sort_order == self.SORT_EXPR_LAST:
            key = lambda o: isinstance(o.default, OptionExpression)  # noqa: E731
        else:
            key = lambda o: o.desc  # noqa: E731
        return sorted(self.options.values(), key=key)

    # --- state kept in checkpoints (JSON-able) ---

    def to_state(self) -> dict:
        """``{name: {'value', 'value_given'}}`` of the saved options (what a checkpoint holds)."""
        out = {}
        for name, o in self.options.items():
            if o.save and not isinstance(o.value, OptionExpression):
                out[name] = {"value": o.value, "value_given": bool(o.value_given)}
        return out

    def load_state(self, state: dict) -> OptionsParser:
        """Set the values saved by :meth:`to_state` (unknown names are ignored); returns self."""
        for name, s in state.items():
            if name in self.options and self.options[name].save:
                o = self.options[name]
                value = s.get("value")
                if isinstance(value, tuple):
                    value = list(value)
                is_default = type(value) is type(o.default) and value == o.default  # e.g. scalar_mean=False
                if value is not None and not is_default and not _saved_value_ok(o.parser, value):
                    raise OptionException(f"the checkpoint's option {o.prefixed_letter} ({o.desc}) holds "
                                          f"{str(value)[:80]!r}, not a value of type {o.parser.get_type_str()}")
                o.value, o.value_given = value, bool(s.get("value_given"))
        return self

    # --- printing ---

    def print_usage(self, print_constraints=False, file=None):
        """Every option: spelling and type, default, description, what excuses or requires it.

        Ports: cuda-convnet-r561/options.py:191-227 OptionsParser.print_usage
        """
        file = file or sys.stdout
        bold = (lambda s: "\033[1m" + s + "\033[0m") if file.isatty() else (lambda s: s)  # noqa: E731
        prog = self.prog or os.path.basename(sys.argv[0])
        print(f"usage: {prog} --name=value ... (-f value for one-letter options; booleans 0/1; "
              f"ranges a-b inclusive; lists comma-separated)", file=file)
        required, optional = [], []
        for o in self.get_options_list():
            sep = " " if len(o.letter) == 1 else "="
            opt = f"{o.prefixed_letter}{sep}<{o.parser.get_type_str()}>"
            notes = []
            if o.excuses == self.EXCLUDE_ALL:
                notes.append("makes every other option optional")
            if o.set_once:
                notes.append("cannot change on resume")
            if o.default is None:
                excs = sorted(o2.prefixed_letter for o2 in self.options.values()
                              if o2.excuses == self.EXCLUDE_ALL or o.name in o2.excuses)
                if excs and print_constraints:
                    notes.append("excused by " + ", ".join(excs))
            reqs = sorted(o2.prefixed_letter for o2 in self.options.values() if o2.name in o.requires)
            if reqs and print_constraints:
                notes.append("requires " + ", ".join(reqs))
            desc = o.desc + (f" ({'; '.join(notes)})" if notes else "")
            if o.default is None:
                required.append((opt, "", desc))
            else:
                optional.append((opt, "[%s]" % o.get_str_value(get_default_str=True), desc))
        w_opt = max(len(r[0]) for r in required + optional)
        w_def = max(len(r[1]) for r in required + optional)
        for title, rows in (("Required options (unless excused):", required), ("Options [default]:", optional)):
            if rows:
                print(bold(title), file=file)
                for opt, default, desc in rows:
                    print(f"  {opt.ljust(w_opt)}  {default.ljust(w_def)}  {desc}".rstrip(), file=file)
        if self.epilog:
            print(self.epilog() if callable(self.epilog) else self.epilog, file=file)

    def print_values(self, file=None):
        """Ports: cuda-convnet-r561/options.py:229-234 OptionsParser.print_values"""
        file = file or sys.stdout
        opts = self.get_options_list(sort_order=self.SORT_DESC)
        longest_desc = max(len(o.desc) for o in opts)
        defaults = [len(o.get_str_value()) for o in opts if not o.value_given and o.default is not None]
        longest_def_value = max(defaults, default=0)
        for o in opts:
            mark = "[DEFAULT]" if (not o.value_given and o.default is not None) else ""
            print("%s: %s %s" % (o.desc.ljust(longest_desc), o.get_str_value().ljust(longest_def_value), mark),
                  file=file)


__all__ = ["OptionException", "OptionMissingException", "OptionParser", "IntegerOptionParser",
           "BooleanOptionParser", "StringOptionParser", "FloatOptionParser", "RangeOptionParser",
           "ListOptionParser", "OptionExpression", "Option", "OptionsParser"]
