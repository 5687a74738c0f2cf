"""
One word per thing (CONTRIBUTING.md, "Words"): no module, class or function of the package is named
with a retired word. Checked on the source with ``ast`` (nothing is imported).

Names users already rely on keep their word (``INBOUND_MESSAGES``, the ``inbound-messages`` path,
the sandbox's ``inbound_url``): they are constants, paths and settings, not modules, classes or
functions, so this check never meets them.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "airflow_provider_orange_sms"
#: Each retired word and the word that replaced it.
RETIRED = {"throttle": "limiter", "inbound": "reply"}


def _names() -> list[tuple[str, str]]:
    """(where, name) for every module, class and function of the package."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = str(path.relative_to(ROOT))
        names += [(where, part) for part in path.relative_to(PACKAGE).with_suffix("").parts]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                names.append((f"{where}:{node.lineno}", node.name))
    return names


NAMES = _names()


@pytest.mark.parametrize(("retired", "word"), sorted(RETIRED.items()))
def test_no_module_class_or_function_uses_a_retired_word(retired, word):
    offenders = [f"{where} {name}" for where, name in NAMES if retired in name.lower()]
    assert offenders == [], f"say {word!r}, not {retired!r}: {offenders}"


def test_the_scan_sees_the_names_it_guards():
    # A scan that found nothing would pass whatever the names.
    names = {name for _, name in NAMES}
    assert {"limit", "file_limiter", "FileSendLimiter", "reply_store", "SMSReply", "store_reply"} <= names


@pytest.mark.parametrize(("retired", "word"), sorted(RETIRED.items()))
def test_contributing_s_glossary_states_each_rule(retired, word):
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    glossary = text.split("## Words", 1)[1].split("\n## ", 1)[0]
    assert re.search(rf"^\| {word} \| {retired} \|", glossary, re.MULTILINE), (
        f"CONTRIBUTING.md's Words table has no row '| {word} | {retired} |'"
    )
