"""``python -m airflow_provider_orange_sms.sandbox.report URL``: print what a running sandbox received."""

from __future__ import annotations

import json
import sys
import urllib.request


def render(state: dict) -> str:
    """
    Format the sandbox's ``/_sandbox/state`` as a short human-readable report.

    :param state: The JSON returned by ``GET /_sandbox/state``.
    """
    lines = [f"Orange SMS sandbox received {len(state['messages'])} SMS:"]
    for message in state["messages"]:
        text = message["message"] if len(message["message"]) <= 60 else message["message"][:57] + "..."
        lines.append(f"  {message['address']:<20} from tel:+{message['sender_address']:<9} {text!r}")
    lines.append(f"Token requests: {state['token_requests']}   429 answers: {state['rate_limited']}")
    lines.append("Balances left: " + ", ".join(f"{c}={u}" for c, u in sorted(state["balances"].items())))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """
    Fetch the state of the sandbox at ``argv[0]`` and print the report.

    :param argv: Command-line arguments (defaults to ``sys.argv[1:]``).
    """
    args = sys.argv[1:] if argv is None else argv
    url = (args[0] if args else "http://127.0.0.1:8089").rstrip("/")
    with urllib.request.urlopen(f"{url}/_sandbox/state", timeout=10) as response:
        print(render(json.load(response)))


if __name__ == "__main__":
    main()
