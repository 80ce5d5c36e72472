"""Lazy re-exports for package ``__init__`` files (PEP 562).

A package lists which of its modules provides each public name; nothing is imported until a name
is first used, so importing a package stays cheap and loads no model or plotting code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from typing import Any


def lazy_exports(
    package: str, sources: Mapping[str, Sequence[str]]
) -> tuple[list[str], Callable[[str], Any]]:
    """``__all__`` and the module-level ``__getattr__`` of ``package``, where ``sources`` maps a
    module to the names it provides."""
    where = {name: module for module, names in sources.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(where[name]), name)

    return sorted(where), __getattr__
