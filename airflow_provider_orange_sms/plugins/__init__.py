"""The provider's three Airflow plugins, loaded by the API server through the ``airflow.plugins``
entry points: the delivery-receipt receiver (``receipts_plugin``), the connection form's
middleware (``connection_form_plugin``: no empty extras stored, the Test icon working without a
port) and the pages (``pages_plugin``: the delivery view and the "Orange SMS" page).

Importing this package is cheap; each plugin module imports Airflow.
"""

from __future__ import annotations
