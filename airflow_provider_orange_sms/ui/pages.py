"""
The pages' markup: the Jinja2 templates in ``templates/`` and the style sheet and scripts in
``static/`` (package data, shipped in the wheel), as Airflow's own FastAPI apps serve theirs.

The HTML pages are static shells: their script fetches the JSON next to them and renders it with
``textContent`` (no data is interpolated into markup; the style sheet and scripts come from the
same app, nothing from elsewhere: the pages work on a closed network). The usage chart is SVG
rendered by the server from numbers and country codes (``templates/usage_chart.svg``). Every
template is autoescaped.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from airflow_provider_orange_sms import __version__

if TYPE_CHECKING:
    from collections.abc import Mapping

    from fastapi import Request
    from starlette.responses import Response

#: Seconds between two refreshes while SMS of the run still wait for receipts.
POLL_SECONDS = 5
#: The style sheet and scripts, served at ``static/`` next to the pages.
STATIC_DIR = Path(__file__).parent / "static"

_TEMPLATES = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.PackageLoader(__package__ or "airflow_provider_orange_sms.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
)


def render(name: str, **context: Any) -> str:
    """
    Render the template ``name`` of ``templates/`` (autoescaped).

    :param name: E.g. ``usage_chart.svg``.
    :param context: The template's variables.
    """
    return _TEMPLATES.get_template(name).render(**context)


def page(request: Request, name: str, headers: Mapping[str, str]) -> Response:
    """
    One of the HTML pages (``delivery.html``, ``account.html``), its static files' URLs carrying the
    provider's version so a browser never runs an upgraded page with a cached older script.

    :param request: The page's request.
    :param name: The template.
    :param headers: Extra response headers.
    """
    context = {"version": __version__, "poll_seconds": POLL_SECONDS}
    return _TEMPLATES.TemplateResponse(request, name, context, headers=headers)


def static_files() -> StaticFiles:
    """The app serving :data:`STATIC_DIR` (no data: the same for every user)."""
    return StaticFiles(directory=STATIC_DIR)
