"""Sphinx configuration of the docs site: Markdown pages (MyST-Parser) and the Python API reference
generated from the docstrings by autodoc. Built by ``./scripts/docs.sh`` with ``-W --keep-going -n``:
every warning is an error and every cross-reference must resolve, offline (no intersphinx)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path[:0] = [str(DOCS / "_ext"), str(DOCS.parent)]

from airflow_provider_orange_sms import __version__  # noqa: E402

# FastAPI's test client (imported by Airflow's API server modules that autodoc imports) warns about
# its httpx; as in the test suite's settings, that is none of the site's business.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

project = "airflow-provider-orange-sms"
author = "airflow-provider-orange-sms developers"
copyright = "the airflow-provider-orange-sms developers; Apache License 2.0"
release = version = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    # The API pages (docs/api/, generated at each build), the connection field table.
    "orange_sms_docs",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "README.md"]

myst_enable_extensions = ["colon_fence", "deflist"]
# Links to a page's section, [text](sending.md#quiet-hours), resolve like GitHub's anchors.
myst_heading_anchors = 3

autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
add_module_names = False  # the page's title names the module
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_preserve_defaults = True
# Airflow's own docstrings (inherited by our operators) are not written for this site.
autodoc_inherit_docstrings = False

nitpicky = True
# No network at build time, so no intersphinx: references to other packages' names (in signatures,
# type hints and docstrings) cannot resolve and are ignored here, by package. Every reference to a
# name of airflow_provider_orange_sms must resolve: none of these patterns matches it.
_OTHER_PACKAGES = (
    "airflow",  # airflow.sdk.BaseOperator, airflow.triggers.base.TriggerEvent, …
    "pendulum",
    "requests",
    "urllib3",
    "redis",
    "tenacity",
    "filelock",
    "anyio",  # the receiver's admission: anyio.Semaphore, anyio.CapacityLimiter
    "phonenumbers",
    "fastapi",
    "starlette",
    "sqlalchemy",
    "cryptography",
    "jinja2",
    "pydantic",
    "structlog",
    # the standard library
    "collections",
    "typing",
    "typing_extensions",
    "datetime",
    "dataclasses",
    "enum",
    "pathlib",
    "logging",
    "threading",
    "socketserver",
    "http",
    "ipaddress",
    "io",
    "os",
    "re",
    "json",
    "csv",
    "concurrent",
    "contextlib",
    "types",
    "asyncio",
    "urllib",
    "zoneinfo",
    "decimal",
    "email",
    "socket",
    "ssl",
    "abc",
)
nitpick_ignore_regex = [
    # Other packages' names as our type hints write them, imported under these short names:
    # airflow.sdk's Asset, Context, PokeReturnValue and BaseSensorOperator, Airflow's TriggerEvent,
    # AirflowException and Connection, SQLAlchemy's Session, Starlette's ASGIApp, Scope, Request and
    # Response, datetime.timedelta; and type variables (T, P, R), which are no names to link to.
    (
        "py:.*",
        r"(Asset|Context|PokeReturnValue|BaseSensorOperator|TriggerEvent|AirflowException|Connection|"
        r"Session|ASGIApp|Scope|Request|Response|timedelta|(airflow_provider_orange_sms\.[\w.]+\.)?_?[TPR])",
    ),
    ("py:.*", rf"({'|'.join(_OTHER_PACKAGES)})(\..+)?"),
    # Built-in types and typing's names as type hints write them (str, dict[str, Any], Any, …).
    ("py:.*", r"(str|int|float|bool|bytes|dict|list|tuple|set|frozenset|object|type|None|Ellipsis)"),
    (
        "py:.*",
        r"(Any|Callable|Iterable|Iterator|Mapping|MutableMapping|Sequence|Collection|Literal|"
        r"Optional|Union|TypeVar|Generator|AsyncIterator|Protocol|NamedTuple|Self|ClassVar|Final)",
    ),
    (
        "py:.*",
        r"(Exception|ValueError|TypeError|KeyError|RuntimeError|OSError|TimeoutError|"
        r"ConnectionError|LookupError|BaseException|Warning|UserWarning|DeprecationWarning)",
    ),
]

html_theme = "alabaster"
html_title = "airflow-provider-orange-sms"
html_static_path: list[str] = []
html_theme_options = {
    "description": "Apache Airflow provider for the Orange SMS API",
    "fixed_sidebar": True,
    "page_width": "1240px",
    "sidebar_width": "260px",
    "body_max_width": "none",  # code lines are up to 110 characters
    "show_relbars": True,
}
html_sidebars = {"**": ["about.html", "navigation.html", "relations.html", "searchbox.html"]}
