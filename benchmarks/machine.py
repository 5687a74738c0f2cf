"""
One simulated machine of the several-machine benchmarks (run by ``machines.py``, maybe under faketime).

Its own cache directory (token file, limiter state), so it shares nothing with the others but
what its settings say (Redis). Argument: a JSON object with ``url`` (the sandbox), ``cache_dir``,
``count``, ``first`` (first recipient number), ``rate_limit_backend`` and ``token_cache`` (``file``
or ``redis``), ``redis_url``, ``fernet_key``, and ``pool_lock`` (a file held for the whole run, as
an Airflow pool with one slot lets one send task run at a time). Prints ``MACHINE {json}`` lines:
ready, then, after ``go`` on stdin, the seconds the whole run took (from "go": including the wait
for the pool) and the modes its sends were spaced with.
"""

from __future__ import annotations

import fcntl
import json
import sys
import time
from typing import Any

from airflow_provider_orange_sms.client import OrangeSMSClient
from airflow_provider_orange_sms.limit import FileSendLimiter, SendLimiter
from airflow_provider_orange_sms.recipients.addresses import normalize_recipient
from airflow_provider_orange_sms.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from airflow_provider_orange_sms.token.token_cache import FileTokenCache, TokenCache


def report(**figures: Any) -> None:
    print("MACHINE " + json.dumps(figures), flush=True)


def build_client(settings: dict[str, Any]) -> OrangeSMSClient:
    cache_dir = settings["cache_dir"]
    token_cache: TokenCache = FileTokenCache(cache_dir)
    make_limiter = None
    if "redis" in (settings["rate_limit_backend"], settings["token_cache"]):
        import redis
        from cryptography.fernet import Fernet

        from airflow_provider_orange_sms.limit.redis_limiter import RedisSendLimiter
        from airflow_provider_orange_sms.token.redis_token_cache import RedisTokenCache

        client = redis.Redis.from_url(settings["redis_url"], socket_timeout=2, socket_connect_timeout=2)

        class DeploymentFernet:
            is_encrypted = True
            fernet = Fernet(settings["fernet_key"])

            def encrypt(self, msg: bytes) -> bytes:
                return self.fernet.encrypt(msg)

            def decrypt(self, msg: bytes | str, ttl: int | None = None) -> bytes:
                return self.fernet.decrypt(msg, ttl)

        if settings["token_cache"] == "redis":
            token_cache = RedisTokenCache(client, DeploymentFernet())
        if settings["rate_limit_backend"] == "redis":

            def make_limiter(rate: float, account: str) -> SendLimiter:
                return RedisSendLimiter(rate, client, account, FileSendLimiter(rate, cache_dir, account))

    return OrangeSMSClient(
        base_url=settings["url"],
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
        sender_address="2250000",
        token_cache=token_cache,
        state_dir=cache_dir,
        make_limiter=make_limiter,
    )


def main() -> None:
    settings = json.loads(sys.argv[1])
    client = build_client(settings)
    # Import what the first send would import (phonenumbers: seconds on a loaded machine), as a
    # worker that already sent has: the figures are about the shared limit, not module imports.
    normalize_recipient("+2250700000000")
    report(ready=True)
    sys.stdin.readline()  # "go"
    start = time.monotonic()
    pool = open(settings["pool_lock"], "a") if settings.get("pool_lock") else None  # noqa: SIM115
    if pool is not None:
        fcntl.flock(pool, fcntl.LOCK_EX)  # the pool's one slot
    failed = 0
    for n in range(settings["first"], settings["first"] + settings["count"]):
        try:
            client.send_sms(f"+22507{n:08d}", "benchmark")
        except Exception:
            failed += 1
    seconds = time.monotonic() - start
    if pool is not None:
        pool.close()
    modes = dict(getattr(client.limiter, "sends_by_mode", {}))
    client.close()
    report(seconds=seconds, failed=failed, modes=modes)


if __name__ == "__main__":
    main()
