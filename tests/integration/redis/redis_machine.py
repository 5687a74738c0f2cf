"""One "machine" of tests/integration/redis/test_redis_machines.py: builds OrangeSMSHook from the
environment's connections, says it is ready (with its own clock's time), sends when told to, reports.

Each send carries the instant its limiter let it go, on Redis's clock (``tag_sends_with_their_slot``),
so the sandbox judges every machine's sends on that one clock.

Run as ``python tests/integration/redis/redis_machine.py <count> <first number>``, possibly under
``faketime``.
"""

from __future__ import annotations

import json
import sys
import time


def report(**figures: object) -> None:
    """One line the test reads (Airflow's own log lines go to stdout too)."""
    print("MACHINE " + json.dumps(figures), flush=True)


def main() -> None:
    count, first = int(sys.argv[1]), int(sys.argv[2])
    from airflow_provider_orange_sms.hooks.orange_sms import OrangeSMSHook
    from tests.support.rate import tag_sends_with_their_slot

    hook = OrangeSMSHook()
    client = hook.client
    tag_sends_with_their_slot(client)
    report(ready=time.time())
    sys.stdin.readline()  # "go": every machine starts at once
    report(go=time.time())
    start = time.monotonic()
    for n in range(first, first + count):
        hook.send_sms(f"+22507{n:08d}", "at once")
    seconds = time.monotonic() - start
    modes = dict(getattr(client.limiter, "sends_by_mode", {}))
    hook.close()
    report(seconds=seconds, modes=modes)


if __name__ == "__main__":
    main()
