"""
The code blocks of the README, CONTRIBUTING.md and the docs pages, with their test markers.

A marker is an HTML comment on the line right before a fence (invisible on GitHub and in the built
site): ``<!-- docs-test: NAME -->`` or ``<!-- docs-test: NAME (ARGUMENT) -->``:

* ``skip (why)``: the block is not run; the reason says why (and usually what runs it instead);
* ``sandbox-connection``: the one ``bash`` block exporting the sandbox's
  ``AIRFLOW_CONN_ORANGE_SMS_DEFAULT``, which every other block then uses;
* ``walkthrough``: the ``bash`` blocks of the walkthrough page, run together as one script in a
  fresh ``AIRFLOW_HOME``;
* ``substitute (OLD -> NEW; OLD2 -> NEW2 | why)``: run with these replacements (each must occur);
* ``redis``: run by the Redis docs test against a real redis-server.

Blocks in a directive fence (``{literalinclude}``, ``{toctree}``…) are not code blocks; a
``{literalinclude}`` names a file, which :data:`INCLUDE_HOMES` says where may live.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
#: The address the pages give the sandbox (its documented command), replaced by a test's own.
DOCS_SANDBOX_URL = "http://127.0.0.1:8089"
MARKERS = ("skip", "sandbox-connection", "walkthrough", "substitute", "redis")
#: Languages a test executes (``json`` is parsed); ``text`` is output or a URL, never run.
RUN_LANGUAGES = ("python", "bash", "json")
SHOWN_LANGUAGES = ("text",)
#: Where an included file may live: example DAGs, each run by tests/integration/dag_runs.
INCLUDE_HOMES = ("example_dags/",)
_FENCE = re.compile(r"^```(\S*)(?:\s+(\S.*))?\s*$")
_MARKER = re.compile(r"^<!--\s*docs-test:\s*([\w-]+)\s*(?:\((.*)\))?\s*-->\s*$")


def doc_files() -> list[Path]:
    """Every Markdown page a user reads: the README, CONTRIBUTING.md and docs/*.md."""
    return [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted(DOCS.glob("*.md"))]


@dataclass
class Block:
    """One fenced code block of a page."""

    path: Path
    language: str
    code: str
    line: int
    marker: str | None
    argument: str | None

    @property
    def is_dag(self) -> bool:
        return bool(re.search(r"\bDAG\(|@dag\b", self.code))

    @property
    def name(self) -> str:
        return self.path.relative_to(ROOT).as_posix()

    @property
    def id(self) -> str:
        first = next((line for line in self.code.splitlines() if line.strip()), "")
        return f"{self.name}:{self.line} {first[:40]}"

    def substituted(self) -> str:
        """The code with the ``substitute`` marker's replacements made (each must occur)."""
        code = self.code
        if self.marker != "substitute":
            return code
        pairs, _, _why = (self.argument or "").partition("|")
        for pair in pairs.split(";"):
            old, _, new = pair.partition(" -> ")
            assert old.strip() in code, f"{self.id}: substitute {old.strip()!r} does not occur"
            code = code.replace(old.strip(), new.strip())
        return code


def blocks(path: Path) -> list[Block]:
    """The page's fenced code blocks (directive fences left out), in document order."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        if not match.group(1) or match.group(1).startswith("{"):  # output, or a directive
            i = _skip_fence(lines, i) + 1
            continue
        start = i
        marker = _MARKER.match(lines[start - 1]) if start > 0 else None
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        found.append(
            Block(
                path=path,
                language=match.group(1),
                code="\n".join(body) + "\n",
                line=start + 1,
                marker=marker.group(1) if marker else None,
                argument=marker.group(2) if marker else None,
            )
        )
        i += 1
    return found


def _skip_fence(lines: list[str], i: int) -> int:
    """The index of the closing fence of the fence opened at ``i`` (no language, or a directive)."""
    i += 1
    while i < len(lines) and lines[i].strip() != "```":
        i += 1
    return i


def unlabelled_fences(path: Path) -> list[int]:
    """Line numbers of fences opened without a language (each must say ``text`` or its language)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[int] = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            if lines[i].strip() == "```":
                found.append(i + 1)
            i = _skip_fence(lines, i)
        i += 1
    return found


def includes(path: Path) -> list[str]:
    """The files a page includes with ``{literalinclude}``, relative to the repository root."""
    text = path.read_text(encoding="utf-8")
    return [
        (path.parent / target).resolve().relative_to(ROOT).as_posix()
        for target in re.findall(r"^```\{literalinclude\}\s+(\S+)", text, re.M)
    ]


def all_blocks() -> list[Block]:
    """Every code block of every page."""
    return [block for path in doc_files() for block in blocks(path)]
