"""
The docs site's generated parts, so that they cannot drift from the code:

* the Python API reference: one page per module of the package, written into ``docs/api/`` at each
  build (public modules document each name of their ``__all__``; internal modules their own
  members, leaving out the names a public module offers, which have one import path);
* the ``orange-sms-connection-fields`` directive: the connection's field table, read from
  :class:`~airflow_provider_orange_sms.config.connection_config.OrangeSMSConfig` (the one definition
  of the fields, which the connection form is generated from too).
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import os
import pkgutil
from dataclasses import MISSING, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.errors import PycodeError
from sphinx.pycode import ModuleAnalyzer
from sphinx.util.docutils import SphinxDirective

if TYPE_CHECKING:
    from sphinx.application import Sphinx

PACKAGE = "airflow_provider_orange_sms"
#: Where users import from; the same list as tests/unit/test_public_api.py (a test checks it).
PUBLIC_MODULES = [
    f"{PACKAGE}.hooks.orange_sms",
    f"{PACKAGE}.operators.orange_sms",
    f"{PACKAGE}.sensors.orange_sms",
    f"{PACKAGE}.triggers.orange_sms",
    f"{PACKAGE}.notifications.orange_sms",
    f"{PACKAGE}.receipts",
    f"{PACKAGE}.exceptions",
    f"{PACKAGE}.segments",
    f"{PACKAGE}.client",
    f"{PACKAGE}.sandbox",
    f"{PACKAGE}.get_provider_info",
]
API_DIR = Path(__file__).resolve().parents[1] / "api"
#: The standard fields of the connection, as the form relabels them (get_provider_info).
STANDARD_FIELDS = [
    ("Client ID", "login", "Your Orange Developer application's client id."),
    ("Client Secret", "password", "Its client secret."),
    (
        "Base URL",
        "host",
        "``https://api.orange.com`` when empty; any ``http(s)://host:port[/path]``, e.g. the sandbox; "
        "no query string or fragment. The port field is used when the host has none.",
    ),
]


def all_modules() -> list[str]:
    """Every module of the package, the package itself first (``__main__`` modules left out)."""
    package = importlib.import_module(PACKAGE)
    names = [PACKAGE]
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{PACKAGE}."):
        if not info.name.endswith("__main__"):
            names.append(info.name)
    return sorted(names)


def _public_objects() -> set[int]:
    offered: set[int] = set()
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for attribute in module.__all__:
            value = getattr(module, attribute)
            if inspect.isclass(value) or inspect.isfunction(value):
                offered.add(id(value))
    return offered


def _directive(value: Any) -> str:
    if inspect.isclass(value):
        return "autoexception" if issubclass(value, BaseException) else "autoclass"
    if inspect.isfunction(value):
        return "autofunction"
    return "autodata"


def _public_page(name: str) -> str:
    module = importlib.import_module(name)
    lines = [name, "=" * len(name), "", f".. automodule:: {name}", "   :no-members:", ""]
    for attribute in module.__all__:
        lines += [f".. {_directive(getattr(module, attribute))}:: {name}.{attribute}", ""]
    return "\n".join(lines)


def _internal_page(name: str) -> str:
    # A package's __all__ offers its modules' names: each is documented where it is defined.
    return "\n".join([name, "=" * len(name), "", f".. automodule:: {name}", "   :ignore-module-all:", ""])


def _write(path: Path, text: str) -> None:
    """Write ``path`` only when it changes, atomically: builds running at once read whole files."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def write_api_pages(app: Sphinx) -> None:
    """Write one page per module into ``docs/api/``, public modules first in the index."""
    API_DIR.mkdir(exist_ok=True)
    internal = [name for name in all_modules() if name not in PUBLIC_MODULES]
    pages = {f"{name}.rst": _public_page(name) for name in PUBLIC_MODULES}
    pages.update({f"{name}.rst": _internal_page(name) for name in internal})
    index = [
        "Python API",
        "==========",
        "",
        "Generated from the docstrings at each build: one page per module.",
        "",
        ".. toctree::",
        "   :caption: Public modules (import from these)",
        "   :maxdepth: 1",
        "",
        *(f"   {name}" for name in PUBLIC_MODULES),
        "",
        ".. toctree::",
        "   :caption: Internal modules (may change in any release)",
        "   :maxdepth: 1",
        "",
        *(f"   {name}" for name in internal),
        "",
    ]
    pages["index.rst"] = "\n".join(index)
    for old in API_DIR.glob("*.rst"):
        if old.name not in pages:  # a module that no longer exists
            old.unlink(missing_ok=True)
    for name, text in pages.items():
        _write(API_DIR / name, text)


def skip_public_names_in_internal_modules(
    app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any
) -> bool | None:
    """A public class or function is documented at its public path only (its one import path)."""
    public: set[int] = app.env.orange_sms_public_objects  # type: ignore[attr-defined]
    if what == "module" and (inspect.isclass(obj) or inspect.isfunction(obj)) and id(obj) in public:
        return True
    return None


def _remember_public_objects(app: Sphinx) -> None:
    app.env.orange_sms_public_objects = _public_objects()  # type: ignore[attr-defined]


def _imported_names(module: Any) -> dict[str, str]:
    """Every ``from x import y [as z]`` of a module, ``TYPE_CHECKING`` ones included: z -> x.y."""
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return {}
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _import_dotted(path: str) -> Any:
    """The object a dotted path names: the longest importable module, then attributes (a name the
    module imports only for type checking is followed to where it comes from)."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if inspect.ismodule(value) and not hasattr(value, attribute):
                origin = _imported_names(value).get(attribute)
                if origin is None:
                    raise AttributeError(attribute)
                value = _import_dotted(origin)
            else:
                value = getattr(value, attribute)
        return value
    raise ImportError(path)


def _documented_name(app: Sphinx, value: Any, fallback: str) -> str | None:
    """The name under which the site documents ``value``: its public path when it has one."""
    objects = app.env.get_domain("py").objects  # type: ignore[attr-defined]
    if inspect.ismodule(value):
        return value.__name__ if value.__name__ in objects else None
    if inspect.isclass(value) or inspect.isfunction(value):
        for name in PUBLIC_MODULES:
            module = importlib.import_module(name)
            if value.__name__ in module.__all__ and getattr(module, value.__name__) is value:
                return f"{name}.{value.__name__}"
        name = f"{value.__module__}.{value.__qualname__}"
        return name if name in objects else None
    if fallback in objects:
        return fallback
    # An attribute or method inherited: documented on the class that defines it.
    owner_path, _, attribute = fallback.rpartition(".")
    try:
        owner = _import_dotted(owner_path)
    except (ImportError, AttributeError):
        return None
    for cls in inspect.getmro(owner) if inspect.isclass(owner) else ():
        name = f"{cls.__module__}.{cls.__qualname__}.{attribute}"
        if attribute in vars(cls) or name in objects:
            return name if name in objects else None
    return None


def public_bases(app: Sphinx, name: str, obj: Any, options: Any, bases: list[type]) -> None:
    """Show a class's public bases: a private base class (not documented) by its own bases."""
    public: list[type] = []
    for base in bases:
        while base.__name__.startswith("_") and base.__module__.startswith(PACKAGE):
            base = base.__bases__[0]
        if base not in public:
            public.append(base)
    bases[:] = public


def resolve_names_as_their_module_sees_them(
    app: Sphinx, env: Any, node: Any, contnode: nodes.Element
) -> nodes.Element | None:
    """
    Resolve a reference of our own the way the docstring's module reads the name: ``:class:`Foo```
    in a module that imports ``Foo``, or a package path (``batch.SMSBatch``) whose object is
    documented under its defining module. Names of other packages are left alone (see conf.py).
    """
    if node.get("refdomain") != "py":
        return None
    target: str = node["reftarget"].lstrip(".~")
    module, owner = node.get("py:module"), node.get("py:class")
    candidates = [target] if target.startswith(PACKAGE) else []
    if module:
        if owner:
            candidates.append(f"{module}.{owner}.{target}")
        candidates.append(f"{module}.{target}")
    for candidate in candidates:
        try:
            value = _import_dotted(candidate)
        except (ImportError, AttributeError):
            value = None  # an instance attribute, documented on the class that sets it
        home = getattr(value, "__module__", None) or getattr(value, "__name__", "")
        constant = isinstance(value, (str, int, float, tuple, frozenset, dict))
        if value is not None and not home.startswith(PACKAGE) and not constant:
            continue  # another package's name
        if inspect.isclass(value) and value.__name__.startswith("_"):
            return contnode  # a private class of ours (a type hint) is not documented: plain text
        name = _documented_name(app, value, candidate)
        if name is None:
            continue
        domain = env.get_domain("py")
        resolved: nodes.Element | None = domain.resolve_xref(
            env, node["refdoc"], app.builder, node["reftype"], name, node, contnode
        )
        if resolved is None:  # a :data: to a constant documented as an attribute, and the like
            resolved = domain.resolve_any_xref(env, node["refdoc"], app.builder, name, node, contnode)
            resolved = resolved[0][1] if resolved else None
        if resolved is not None:
            return resolved
    return None


@functools.cache
def _attribute_docs() -> dict[str, list[tuple[Any, list[str]]]]:
    """The ``#:`` comments of every module-level name of the package: name -> (value, lines)."""
    found: dict[str, list[tuple[Any, list[str]]]] = {}
    for name in all_modules():
        module = importlib.import_module(name)
        try:
            docs = ModuleAnalyzer.for_module(name).find_attr_docs()
        except PycodeError:
            continue
        for (owner, attribute), lines in docs.items():
            if owner == "" and hasattr(module, attribute):
                found.setdefault(attribute, []).append((getattr(module, attribute), list(lines)))
    return found


def constants_documented_where_defined(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """
    A constant a public module re-exports is documented by its ``#:`` comment where it is defined,
    not by its type's docstring (``str``'s, ``timedelta``'s), which autodoc shows otherwise.
    """
    if what not in ("data", "attribute") or not lines:
        return
    if inspect.getdoc(type(obj)) and "\n".join(lines).strip() == inspect.getdoc(type(obj)):
        lines[:] = []
        for value, doc in _attribute_docs().get(name.rpartition(".")[2], []):
            if value is obj or (type(value) is type(obj) and value == obj):
                lines[:] = doc
                break


def connection_field_rows() -> list[tuple[str, str, str]]:
    """(label, name, meaning) of every connection field: the standard ones, then each extra."""
    from airflow_provider_orange_sms.config.connection_config import OrangeSMSConfig, extra_fields

    rows = list(STANDARD_FIELDS)
    defaults = {f.name: f.default for f in fields(OrangeSMSConfig)}
    for f, spec in extra_fields():
        default = defaults[f.name]
        meaning = spec.description
        if default not in (MISSING, None) and "default" not in meaning.lower():
            shown = int(default) if isinstance(default, float) and default.is_integer() else default
            meaning += f" Default: ``{shown}``."
        rows.append((spec.label, f"``{f.name}`` (extra)", meaning))
    return rows


class ConnectionFieldsDirective(SphinxDirective):
    """``orange-sms-connection-fields``: the connection form's fields, from the config's definition."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        # The page is Markdown (MyST): the table is written as one, inline code in backticks.
        table = ["| Field (form label) | Stored as | Meaning |", "|---|---|---|"]
        for label, name, meaning in connection_field_rows():
            stored = name if "extra" in name else f"``{name}``"
            cells = [label, stored, meaning]
            table.append("| " + " | ".join(c.replace("``", "`").replace("|", "\\|") for c in cells) + " |")
        container = nodes.container()
        self.state.nested_parse(StringList(table, source="connection fields"), self.content_offset, container)
        return container.children


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", write_api_pages)
    app.connect("builder-inited", _remember_public_objects)
    app.connect("autodoc-skip-member", skip_public_names_in_internal_modules)
    app.connect("missing-reference", resolve_names_as_their_module_sees_them)
    app.connect("autodoc-process-bases", public_bases)
    app.connect("autodoc-process-docstring", constants_documented_where_defined)
    app.add_directive("orange-sms-connection-fields", ConnectionFieldsDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
