"""
Cells of the CSV files the provider writes, safe to open in a spreadsheet (OWASP's CSV injection
guidance): text starting like a formula is written behind a single quote, so it shows as text and
never runs. Phone numbers start with ``+``: they are written ``'+2250700000001``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

#: What makes a spreadsheet read a cell as a formula (``+`` and ``-`` too: ``+1+cmd|…``).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(row: Mapping[str, Any]) -> dict[str, Any]:
    """
    ``row`` with each text value that starts like a formula prefixed with ``'``; other values as they are.

    :param row: One CSV row, column -> value.
    """
    return {
        column: "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value
        for column, value in row.items()
    }


def unquoted_number(cell: str) -> str:
    """
    A phone number read from a CSV cell, without the ``'`` :func:`spreadsheet_safe` (or a
    spreadsheet user) put in front of it.

    :param cell: The cell's text.
    """
    return cell[1:] if cell.startswith("'") else cell
