"""
The package's folders are its table of contents: one package per concern, one rule for what is
private, few modules at the top level. Checked on the source with ``ast`` (nothing is imported).

- No module is longer than 500 lines.
- Public modules are those of ``PUBLIC_MODULES`` (tests/unit/test_public_api.py); every other module
  is internal to the package it sits in. No module name starts with ``_``.
- A module outside a package uses it through the package: ``from airflow_provider_orange_sms.ledger
  import SentLedger``, never ``from airflow_provider_orange_sms.ledger.sent_ledger import ...``.
  The names it takes are the ones the package's ``__init__`` offers (its ``__all__``; for the public
  ``receipts``, also its ``_HOMES``, the names other packages use but users do not).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.unit.test_public_api import PUBLIC_MODULES

PACKAGE = "airflow_provider_orange_sms"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE
PUBLIC = {name.removeprefix(PACKAGE + ".") for name in PUBLIC_MODULES}
#: The most modules the top level may hold besides ``get_provider_info.py``.
MAX_TOP_LEVEL = 8
#: The longest a module may be, in lines: a longer one holds more than one concern.
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()
PACKAGES = sorted(name for name, path in MODULES.items() if path.name == "__init__.py" and name)


def _offered(package: str) -> set[str]:
    """What a package's ``__init__`` offers other packages: ``__all__`` and ``_HOMES``'s keys."""
    names: set[str] = set()
    for node in ast.parse(MODULES[package].read_text()).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id in ("__all__", "_HOMES") for t in targets):
                value = node.value
                if isinstance(value, (ast.List, ast.Tuple)):
                    names |= {e.value for e in value.elts if isinstance(e, ast.Constant)}
                elif isinstance(value, ast.Dict):
                    names |= {k.value for k in value.keys if isinstance(k, ast.Constant)}
    return names


def _home(name: str) -> str:
    """The package a module belongs to: its first folder ("" for a top-level module)."""
    path = MODULES[name]
    return name.split(".")[0] if "." in name or path.name == "__init__.py" else ""


def test_no_module_name_starts_with_an_underscore():
    private = [
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*.py")
        if path.stem.startswith("_") and path.stem not in ("__init__", "__main__")
    ]
    assert private == [], "one rule for private: not in PUBLIC_MODULES; no leading underscore"


def test_the_top_level_holds_few_modules():
    top = sorted(p.name for p in ROOT.glob("*.py") if p.name != "get_provider_info.py")
    assert len(top) <= MAX_TOP_LEVEL, f"{len(top)} top-level modules: {top}; put the new one in a package"


def test_no_module_is_longer_than_max_lines():
    lines = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    long = {name: n for name, n in lines.items() if n > MAX_LINES}
    assert long == {}, f"modules over {MAX_LINES} lines: {long}; split them by concern"


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_says_what_it_is(package):
    assert ast.get_docstring(ast.parse(MODULES[package].read_text())), (
        f"{package}/__init__.py has no docstring"
    )


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_another_packages_internal_module(name):
    home = _home(name)
    wrong = []
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            targets = [
                (a.name.removeprefix(PACKAGE + "."), None)
                for a in node.names
                if a.name.startswith(PACKAGE + ".")
            ]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE + "."):
            targets = [(node.module.removeprefix(PACKAGE + "."), [a.name for a in node.names])]
        else:
            continue
        for target, names in targets:
            package = target.split(".")[0]
            if target in PUBLIC or package == home or target not in MODULES:
                continue
            if "." in target:
                wrong.append(f"line {node.lineno}: imports {target}, internal to {package}/")
            elif names is not None and MODULES[target].name == "__init__.py":
                offered = _offered(package)
                missing = [n for n in names if n not in offered and f"{package}.{n}" not in MODULES]
                if missing:
                    wrong.append(
                        f"line {node.lineno}: takes {missing} from {package}, which does not offer them"
                    )
    assert wrong == []
