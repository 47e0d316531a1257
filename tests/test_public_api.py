"""Every package declares its public surface in ``__all__``, and exports exactly that.

As httpx's ``test_exported_members``: what a package holds under a public name is what
its ``__all__`` says, no more and no less. Submodules, names imported only for typing,
and the standard library's helpers (``annotations``, ``Path``, ``TYPE_CHECKING``...)
are not part of a surface. Lazy packages (``retrieval``, ``analysis`` and turk's areas)
must resolve every declared name.
"""

from __future__ import annotations

import importlib
import sys
import types

import pytest

PACKAGES = [
    "turk",
    "turk.cli",
    "turk.cli.commands",
    "turk.collection",
    "turk.candidates",
    "turk.hits",
    "turk.crowd",
    "turk.dataset",
    "turk.project",
    "turk.sandbox",
    "turk.migrations",
    "retrieval",
    "analysis",
    "hit_templates",
]


def _from_stdlib(value: object) -> bool:
    module = getattr(value, "__module__", None) or type(value).__module__
    return module.split(".")[0] in sys.stdlib_module_names or module == "__future__"


@pytest.mark.parametrize("name", PACKAGES)
def test_package_exports_exactly_its_all(name: str) -> None:
    package = importlib.import_module(name)
    declared = getattr(package, "__all__", None)
    assert isinstance(declared, list), f"{name}: no __all__ list"
    assert len(declared) == len(set(declared)), f"{name}: a name twice in __all__"
    for member in declared:
        assert getattr(package, member, None) is not None, f"{name}.{member} does not resolve"
    public = {
        member
        for member, value in vars(package).items()
        if (not member.startswith("_") or member in declared)
        and not isinstance(value, types.ModuleType)
        and not (_from_stdlib(value) and member not in declared)
    }
    if "__getattr__" in vars(package):  # lazy: declared names load on first use
        assert public <= set(declared), f"{name}: undeclared {sorted(public - set(declared))}"
    else:
        assert public == set(declared), f"{name}: exported {sorted(public ^ set(declared))}"


def test_every_package_is_checked() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    found = {
        ".".join(init.parent.relative_to(root).parts)
        for top in ("turk", "retrieval", "analysis", "hit_templates")
        for init in (root / top).rglob("__init__.py")
        if "instructions" not in init.parts
    }
    assert found == set(PACKAGES)
