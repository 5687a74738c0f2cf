"""
What the README, CONTRIBUTING.md and the docs pages say about the code stays true: the module tree,
the files and modules they name, the CI stages, the public modules, and the pages' own rules (a
short README, no issue numbers or work history in what users read).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path

import pytest

from tests.support.doc_blocks import DOCS, ROOT, doc_files
from tests.unit.test_public_api import PUBLIC_MODULES

PACKAGE = ROOT / "airflow_provider_orange_sms"
CONTRIBUTING = ROOT / "CONTRIBUTING.md"
_NAME = re.compile(r"([\w/]+\.py|\w+/)(?:\s+|$)")


def contributing_tree() -> list[str]:
    """The paths the CONTRIBUTING.md tree lists under the package, relative to it."""
    text = CONTRIBUTING.read_text(encoding="utf-8")
    start = text.index("```text\nairflow_provider_orange_sms/")
    lines = text[start:].split("\n")[2:]
    paths: list[str] = []
    folders: list[str] = []
    for line in lines:
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if line.startswith("```") or indent == 0:
            break  # the end of the package (the repository's other folders follow)
        if indent >= 20:
            continue  # a description's second line
        level = indent // 2 - 1
        folders = folders[:level]
        while (match := _NAME.match(stripped)) is not None:
            name = match.group(1)
            stripped = stripped[match.end() :]
            if name.endswith("/"):
                folders.append(name.rstrip("/"))
                paths.append("/".join(folders) + "/")
            else:
                paths.append("/".join([*folders, name]))
    return paths


def test_the_contributing_tree_lists_every_module_and_only_modules_that_exist():
    listed = contributing_tree()
    assert len(listed) > 50, listed
    for path in listed:
        assert (PACKAGE / path).exists(), f"CONTRIBUTING.md lists {path}, which does not exist"
    modules = sorted(
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py" or path.parent == PACKAGE
    )
    missing = [module for module in modules if module not in listed]
    assert missing == [], f"CONTRIBUTING.md's tree misses {missing}"
    packages = [p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()]
    unlisted = [name for name in packages if not any(path.startswith(f"{name}/") for path in listed)]
    assert unlisted == [], f"CONTRIBUTING.md's tree misses the packages {unlisted}"


_PATH = re.compile(
    r"\b((?:airflow_provider_orange_sms|tests|scripts|example_dags|benchmarks|docs)/[\w/.-]+\.(?:py|sh|md|png))"
)
_MODULE = re.compile(r"\bairflow_provider_orange_sms(?:\.\w+)+")


@pytest.mark.parametrize("page", doc_files(), ids=lambda p: p.name)
def test_the_files_and_modules_a_page_names_exist(page: Path):
    text = page.read_text(encoding="utf-8")
    for path in set(_PATH.findall(text)):
        base = ROOT if not (page.parent == DOCS and (DOCS / path).exists()) else DOCS
        assert (base / path).exists() or (ROOT / path).exists(), (
            f"{page.name} names {path}, which does not exist"
        )
    for dotted in set(_MODULE.findall(text)):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            if _is_module(".".join(parts[:cut])):
                value = importlib.import_module(".".join(parts[:cut]))
                for attribute in parts[cut:]:
                    assert hasattr(value, attribute), f"{page.name} names {dotted}, which does not exist"
                    value = getattr(value, attribute)
                break


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a name inside a module, not a module
        return False


def ci_stages() -> tuple[list[str], list[str]]:
    """What .ci/run installs from Debian and the scripts it runs, in the order they are written."""
    text = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    packages = re.findall(r"missing\+=\(([\w-]+)\)", text)
    scripts = re.findall(r"^\s*(?:[A-Z_]+=\S+\s+)*(\./scripts/[\w-]+\.sh)\b", text, re.M)
    return packages, scripts


def test_contributing_lists_the_ci_stages_in_order():
    packages, scripts = ci_stages()
    text = CONTRIBUTING.read_text(encoding="utf-8")
    start = text.index("<!-- The list below is checked against .ci/run")
    listed = text[start : text.index("\n\n", text.index("\n- ", start))]
    bullets = [" ".join(b.split()) for b in listed.split("\n- ")[1:]]
    assert bullets[0].startswith("Debian packages")
    assert re.findall(r"`([\w-]+)`", bullets[0]) == packages
    assert [re.match(r"`(\./scripts/[\w-]+\.sh)`", b).group(1) for b in bullets[1:]] == scripts  # type: ignore[union-attr]
    assert "./scripts/docs.sh" in scripts


def test_the_docs_site_documents_the_public_modules():
    tree = ast.parse((DOCS / "_ext" / "orange_sms_docs.py").read_text(encoding="utf-8"))
    [assignment] = [
        n
        for n in tree.body
        if isinstance(n, ast.AnnAssign | ast.Assign) and "PUBLIC_MODULES" in ast.unparse(n)
    ]
    names = [
        ast.literal_eval(ast.unparse(e).replace("f'{PACKAGE}", "'airflow_provider_orange_sms"))
        for e in assignment.value.elts
    ]  # type: ignore[union-attr]
    assert sorted(names) == sorted(PUBLIC_MODULES)


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) < 250


#: What users should never read: this project's issue numbers, work sessions, stale claims.
_NOT_FOR_USERS = [
    r"\bissue \d+",
    r"\bissues? #?\d+",
    r"\bstop \d+\b",
    r"\bsession \d+",
    r"\bround \d+",
    r"never assert timings",
    r"five fenced modules",
    r"\.ci/run installs Chromium",
]


@pytest.mark.parametrize("page", doc_files(), ids=lambda p: p.name)
def test_pages_speak_of_versions_not_work_history(page: Path):
    text = page.read_text(encoding="utf-8")
    for pattern in _NOT_FOR_USERS:
        assert not re.search(pattern, text, re.I), f"{page.name}: {re.search(pattern, text, re.I)}"
