"""
The sandbox's command line in its own process: ``python -m airflow_provider_orange_sms.sandbox`` serves
the client as the demo and the docs run it, and its report prints what it received.
"""

from __future__ import annotations

import pytest

from tests.support.sandbox import OWN_NUMBER


@pytest.mark.processes
def test_command_line_sandbox_and_report(tmp_path):
    """The two commands the demo and the docs use: run the sandbox, then print what it received."""
    import socket
    import subprocess
    import sys

    from airflow_provider_orange_sms.client import OrangeSMSClient, RetryPolicy
    from airflow_provider_orange_sms.exceptions import OrangeSMSBadRequestError, OrangeSMSRateLimitError

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    args = ["--port", str(port), "--balances", '{"CIV": 7}', "--client-id", "cli", "--client-secret", "s3"]
    args += [
        "--sender",
        f"{OWN_NUMBER},2250700007777",
        "--sender",
        "+2250700006666",
        "--token-rate-limit",
        "2",
    ]
    server = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_orange_sms.sandbox", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert f"listening on {url}" in server.stdout.readline()  # printed once it accepts requests
        client = OrangeSMSClient(
            base_url=url,
            client_id="cli",
            client_secret="s3",
            sender_address="2250000",
            rate_limit_per_second=None,
        )
        client.send_sms("+2250700000001", "Bonjour à tous")
        client.send_sms("+2250700000002", "hi", sender_address="2250700006666")
        with pytest.raises(OrangeSMSBadRequestError, match="SVC0002"):
            client.send_sms("+2250700000002", "hi", sender_address="2250700005555")  # not the account's
        assert client.get_available_units() == 5
        tokens = [
            OrangeSMSClient(
                base_url=url, client_id="cli", client_secret="s3", retry=RetryPolicy(max_attempts=1)
            )
            for _ in range(2)
        ]
        tokens[0].get_token()  # the second token request of "cli" this minute
        with pytest.raises(OrangeSMSRateLimitError, match="429 53"):
            tokens[1].get_token()
        report = subprocess.run(
            [sys.executable, "-m", "airflow_provider_orange_sms.sandbox.report", url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        server.terminate()
        server.wait(30)
    assert "received 2 SMS" in report
    assert "tel:+2250700000001" in report
    assert "'Bonjour à tous'" in report
    assert "Balances left: CIV=5" in report
