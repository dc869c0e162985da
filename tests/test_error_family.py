"""Every public exception StreetWatch defines is a StreetWatchError (streetwatch/errors.py).

The CLI catches that one family and prints the message instead of a traceback, and a caller of
any module can rely on it. Private classes (``_Name``) used for control flow inside one module
are left out.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

from streetwatch.errors import StreetWatchError

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("streetwatch", "edge", "server", "training", "demo")


def public_exceptions() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for package in PACKAGES:
        for info in pkgutil.walk_packages([str(REPO / package)], prefix=package + "."):
            if info.name.startswith("server.migrations"):
                continue
            module = importlib.import_module(info.name)
            for name, value in vars(module).items():
                if (
                    inspect.isclass(value)
                    and issubclass(value, BaseException)
                    and value.__module__ == info.name
                    and not name.startswith("_")
                ):
                    found.append(value)
    return found


def test_every_public_exception_is_a_streetwatch_error() -> None:
    exceptions = public_exceptions()
    assert len(exceptions) > 10  # the walk found the package's errors at all
    outside = sorted(
        f"{e.__module__}.{e.__qualname__}" for e in exceptions if not issubclass(e, StreetWatchError)
    )
    assert outside == [], f"exceptions outside the StreetWatchError family: {outside}"
