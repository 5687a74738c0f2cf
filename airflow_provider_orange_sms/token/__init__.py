"""The OAuth2 access token: credentials, the one shared fetch, and where tokens are kept between
tasks and machines (a file, an Airflow Variable, or Redis).
"""

from __future__ import annotations
