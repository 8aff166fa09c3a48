"""The errors a user can cause, each shown as one line and exit code 2 (never a traceback).

Raise :class:`UserError` (or a subclass) with a message that names the file, the place in it
(section, key, batch) and what was expected; the command-line entry points catch it with
:func:`main_guard` and print ``<prog>: <message>``.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from functools import wraps

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A mistake in the user's input: files, options, data. Printed as one line, exit 2."""


class ConfigError(UserError):
    """A problem in a layer-def or layer-params file: names the file, section and key."""

    def __init__(self, path, section: str | None, key: str | None, expected: str):
        self.path, self.section, self.key, self.expected = path, section, key, expected
        where = str(path)
        if section:
            where += f": [{section}]"
        if key:
            where += f" {key}"
        super().__init__(f"{where}: {expected}")


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose mistakes (unknown option, bad value) are one-line :class:`UserError` s."""

    def error(self, message):
        raise UserError(f"{message} (see --help)")


def main_guard(prog: str) -> Callable:
    """Decorate a ``main(argv) -> int`` so a :class:`UserError` becomes one line and exit 2,
    and each warning one line ``<prog>: warning: <message>``."""
    def wrap(main: Callable[..., int]) -> Callable[..., int]:
        @wraps(main)
        def guarded(*args, **kwargs) -> int:
            formatwarning = warnings.formatwarning
            warnings.formatwarning = lambda message, *_a, **_k: f"{prog}: warning: {message}\n"
            try:
                return main(*args, **kwargs)
            except UserError as e:
                print(f"{prog}: {e}", file=sys.stderr)
                return EXIT_USER_ERROR
            except KeyboardInterrupt:
                print(f"{prog}: interrupted", file=sys.stderr)
                return 130
            finally:
                warnings.formatwarning = formatwarning
        return guarded
    return wrap
