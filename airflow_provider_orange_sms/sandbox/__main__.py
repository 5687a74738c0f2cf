"""``python -m airflow_provider_orange_sms.sandbox --port 8089``: run the emulator in the foreground."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging

from airflow_provider_orange_sms.sandbox.server import SandboxServer
from airflow_provider_orange_sms.sandbox.state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SandboxConfig


def main(argv: list[str] | None = None) -> None:
    """
    Parse the command line and serve until interrupted.

    :param argv: Arguments (defaults to ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(description="Local Orange SMS API emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    parser.add_argument("--token-lifetime", type=int, default=3600, help="seconds a token lives")
    parser.add_argument("--rate-limit", type=int, default=5, help="sends per second before 429")
    parser.add_argument(
        "--rate-window",
        type=float,
        default=1.0,
        help="seconds of the rate window (Orange: 1); shorter tolerates this machine's own jitter",
    )
    parser.add_argument(
        "--arrival-jitter-ms",
        type=float,
        default=0.0,
        help="hold each send a random 0..N ms before the rate window sees it (network jitter)",
    )
    parser.add_argument(
        "--token-rate-limit",
        type=int,
        default=50,
        help="token requests per client id per minute before 429 code 53 (Orange: 50); 0 for no cap",
    )
    parser.add_argument(
        "--accept-json-everywhere",
        action="store_true",
        help="answer 406 on every endpoint without Accept: application/json (always on the token one)",
    )
    parser.add_argument("--balances", default=None, help="JSON, e.g. '{\"CIV\": 1000}'")
    parser.add_argument(
        "--sender",
        action="append",
        default=[],
        help="the account's own sender number (repeatable or comma-separated); given, only these and "
        "Orange's country numbers are accepted; by default any well-formed number is",
    )
    parser.add_argument(
        "--dr-delay", type=float, default=0.2, help="seconds before a delivery receipt (negative: none)"
    )
    parser.add_argument(
        "--dr-statuses",
        default="DeliveredToTerminal",
        help="comma-separated receipts posted per SMS, e.g. MessageWaiting,DeliveredToTerminal",
    )
    parser.add_argument(
        "--dr-impossible-every", type=int, default=0, help="every Nth SMS ends in DeliveryImpossible"
    )
    parser.add_argument(
        "--dr-retries", type=int, default=0, help="post a receipt again up to N times when posting it failed"
    )
    parser.add_argument(
        "--dr-no-callback-data", action="store_true", help="send receipts with an empty callbackData"
    )
    parser.add_argument(
        "--inbound-url",
        default=None,
        help="where POST /_sandbox/inbound posts subscribers' SMS (the receiver's inbound-messages URL)",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    senders = tuple(
        part.strip().removeprefix("tel:").lstrip("+")
        for value in args.sender
        for part in value.split(",")
        if part.strip()
    )
    bad = [sender for sender in senders if not sender.isdigit()]
    if bad:
        parser.error(f"--sender {bad[0]!r}: expected a number with its country code, e.g. 2250700009999")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    config = SandboxConfig(
        clients={args.client_id: args.client_secret},
        token_lifetime=args.token_lifetime,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        arrival_jitter_ms=args.arrival_jitter_ms,
        dr_delay=None if args.dr_delay < 0 else args.dr_delay,
        dr_statuses=tuple(s.strip() for s in args.dr_statuses.split(",") if s.strip()),
        dr_impossible_every=args.dr_impossible_every,
        dr_retries=args.dr_retries,
        dr_callback_data=not args.dr_no_callback_data,
        inbound_url=args.inbound_url,
        sender_addresses=senders,
        token_rate_limit=args.token_rate_limit,
        accept_json_everywhere=args.accept_json_everywhere,
    )
    if args.balances:
        config.balances = {str(k): int(v) for k, v in json.loads(args.balances).items()}
    server = SandboxServer(args.host, args.port, config)
    print(f"Orange SMS sandbox listening on {server.url} (client id {args.client_id!r})", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
