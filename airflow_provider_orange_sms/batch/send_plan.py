"""The plan of a :class:`~airflow_provider_orange_sms.operators.send_sms.SendSMSOperator` batch.

What it will send and cost, before the first send: SMS and segments (counted as the network does)
per recipient country, and per contract billed, which is the sender's country (Orange debits the
contract of the sender address, whoever the recipient is).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_orange_sms.opt_out import opted_out_entry
from airflow_provider_orange_sms.recipients import contract_country, country_of
from airflow_provider_orange_sms.segments import gsm7_lookalikes, message_cost

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_orange_sms.opt_out import OptOutRecord


def build_plan(
    texts: dict[str, str],
    senders: dict[str, str],
    *,
    dry_run: bool,
    opted_out: Mapping[str, OptOutRecord] | None = None,
) -> tuple[dict[str, Any], dict[str, tuple[str | None, int]]]:
    """
    Return what the batch will send, and each recipient's contract country and segments.

    The plan holds, per recipient country, the recipients, senders, SMS and segments, and per
    encoding the SMS (``encodings``) and segments (``segments_by_encoding``) (``by_country``); per
    contract (the sender's country, which Orange bills) the senders, SMS and segments
    (``by_contract``); the recipients outside their sender's country, counted per recipient country
    (``outside_sender_country``: Orange may bill them differently or refuse them; they are still
    sent), with the senders' countries; the messages that are UCS-2 only because of a look-alike
    character;
    in a dry run also each message. The costs (``{recipient: (contract country or None, segments)}``)
    feed the balance check.

    ``opted_out`` (``None``: not read yet, as before a real batch, which reads each record right
    before its send) leaves those recipients out of every sum: the plan's ``opted_out`` counts them
    and ``opted_out_recipients`` lists them.

    :param texts: The text sent to each normalised recipient.
    :param senders: The sender number of each recipient.
    :param dry_run: List every message too (a real send's plan stays a summary).
    :param opted_out: The records of the recipients on the opt-out list, when read.
    """
    rows: list[dict[str, Any]] = []
    costs: dict[str, tuple[str | None, int]] = {}
    by_country: dict[str, dict[str, Any]] = {}
    by_contract: dict[str, dict[str, Any]] = {}
    contracts: dict[str, str | None] = {}
    lookalikes: list[dict[str, Any]] = []
    outside: dict[str, int] = {}
    outside_senders: set[str] = set()
    for address, text in texts.items():
        if opted_out is not None and address in opted_out:
            continue
        country = country_of(address) or "unknown"
        cost = message_cost(text)
        sender = senders[address]
        if sender not in contracts:
            contracts[sender] = contract_country(sender)
        contract = contracts[sender]
        costs[address] = (contract, cost.segments)
        if contract is not None and country not in ("unknown", contract):
            outside[country] = outside.get(country, 0) + 1
            outside_senders.add(contract)
        if dry_run:  # a real send's plan stays a summary: 10,000 rows need not sit in XCom
            rows.append(
                {
                    "recipient": address,
                    "country": country,
                    "sender": sender,
                    "contract": contract or "unknown",
                    "encoding": cost.encoding,
                    "segments": cost.segments,
                    "message": text,
                }
            )
        billed = by_contract.setdefault(contract or "unknown", {"senders": [], "sms": 0, "segments": 0})
        billed["sms"] += 1
        billed["segments"] += cost.segments
        if sender not in billed["senders"]:
            billed["senders"].append(sender)
        summary = by_country.setdefault(
            country,
            {"recipients": 0, "senders": [], "segments": 0, "encodings": {}, "segments_by_encoding": {}},
        )
        summary["recipients"] += 1
        summary["segments"] += cost.segments
        summary["encodings"][cost.encoding] = summary["encodings"].get(cost.encoding, 0) + 1
        by_encoding = summary["segments_by_encoding"]
        by_encoding[cost.encoding] = by_encoding.get(cost.encoding, 0) + cost.segments
        if sender not in summary["senders"]:
            summary["senders"].append(sender)
        found = gsm7_lookalikes(text)
        if found:
            lookalikes.append({"recipient": address, "characters": found})
    plan: dict[str, Any] = {
        "dry_run": dry_run,
        "recipients": len(costs),
        "segments": sum(segments for _, segments in costs.values()),
        "by_country": by_country,
        "by_contract": by_contract,
        "lookalike_messages": lookalikes,
        "outside_sender_country": {
            "recipients": sum(outside.values()),
            "countries": dict(sorted(outside.items())),
            "sender_countries": sorted(outside_senders),
        },
        "opted_out": None if opted_out is None else len(opted_out),
    }
    if opted_out is not None:
        plan["opted_out_recipients"] = [opted_out_entry(a, r) for a, r in opted_out.items()]
    if dry_run:
        plan["messages"] = rows
    return plan, costs


def log_plan(plan: dict[str, Any], logger: Any) -> None:
    """
    Log a plan from :func:`build_plan`: one line per recipient country and per contract, a warning
    counting the recipients outside their sender's country, and one naming look-alike characters.

    :param plan: The plan.
    :param logger: Where the lines go.
    """
    for country, summary in sorted(plan["by_country"].items()):
        logger.info(
            "Plan for %s: %d SMS, %d segment(s) (%s), sender %s",
            country,
            summary["recipients"],
            summary["segments"],
            ", ".join(f"{n} {encoding}" for encoding, n in sorted(summary["encodings"].items())),
            ", ".join(summary["senders"]),
        )
    for contract, billed in sorted(plan["by_contract"].items()):
        logger.info(
            "Billed to the %s contract (sender %s): %d SMS, %d segment(s)",
            contract,
            ", ".join(billed["senders"]),
            billed["sms"],
            billed["segments"],
        )
    if plan["opted_out"]:
        logger.info(
            "Opt-out list: %d recipient(s) opted out, not sent (e.g. %s)",
            plan["opted_out"],
            ", ".join(e["recipient"] for e in plan.get("opted_out_recipients", [])[:5]),
        )
    outside = plan["outside_sender_country"]
    if outside["recipients"]:
        logger.warning(
            "%d recipient(s) outside their sender's country (%s; sender country %s): Orange may bill "
            "them differently or refuse them; they are sent all the same",
            outside["recipients"],
            ", ".join(f"{country}: {n}" for country, n in outside["countries"].items()),
            ", ".join(outside["sender_countries"]),
        )
    if plan["lookalike_messages"]:
        first = plan["lookalike_messages"][0]
        logger.warning(
            "%d message(s) are UCS-2 (more segments) only because of look-alike characters, e.g. "
            "%s in the message to %s; replace_lookalikes=True sends their GSM-7 forms",
            len(plan["lookalike_messages"]),
            " ".join(repr(c) for c in first["characters"]),
            first["recipient"],
        )
