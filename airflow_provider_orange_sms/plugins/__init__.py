"""The provider's four Airflow plugins, loaded through the ``airflow.plugins`` entry points: by the
API server, the delivery-receipt receiver (``receipts_plugin``), the connection form's middleware
(``connection_form_plugin``: no empty extras stored, the Test icon working without a port) and the
pages (``pages_plugin``: the delivery view and the "Orange SMS" page); by the triggerer, a listener
that builds its execution API as it starts (``triggerer_warm_up_plugin``).

Importing this package is cheap; each plugin module imports Airflow.
"""

from __future__ import annotations
