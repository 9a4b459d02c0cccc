"""Adyen webhook throughput: verify + parse + translate of a failed AUTHORISATION notification.

Floor, measured in the same run: ``json.loads`` of the body plus, for each item, the HMAC-SHA256
of its signing string and a constant-time compare — the least any correct receiver must do.
Target: our rate is at least 25% of the floor. Short run (about 2 s per side, in 5 interleaved
rounds); no network.

    .venv/bin/python bench/bench_adyen_webhook.py
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import statistics
import time
from collections.abc import Callable

from recoverkit_adyen import TEST_HMAC_KEY, AdyenProvider, AdyenSettings

from recoverkit.provider import WebhookRequest

TARGET = 0.25


def _rate(work: Callable[[], object], seconds: float) -> float:
    for _ in range(50):  # warm caches (decline table, pydantic validators)
        work()
    # CPU time of this process, not wall time: on a shared machine the scheduler's pauses would
    # otherwise be billed to whichever side happened to be running.
    count, start = 0, time.process_time()
    deadline = start + seconds
    while True:
        for _ in range(100):
            work()
        count += 100
        now = time.process_time()
        if now >= deadline:
            return count / (now - start)


def main(seconds: float = 4.0, rounds: int = 5) -> float:
    provider = AdyenProvider(AdyenSettings(webhook_secrets=[TEST_HMAC_KEY], acquirer_country="NL"))
    request: WebhookRequest = provider.sample_webhooks()[0]  # failed AUTHORISATION, one item
    body = request.body
    key = binascii.a2b_hex(TEST_HMAC_KEY)

    def floor() -> object:
        data = json.loads(body)
        for wrapper in data["notificationItems"]:
            item = wrapper["NotificationRequestItem"]
            amount = item["amount"]
            signing = (
                ":".join(
                    str(item.get(name, "") or "")
                    for name in (
                        "pspReference",
                        "originalReference",
                        "merchantAccountCode",
                        "merchantReference",
                    )
                )
                + f":{amount['value']}:{amount['currency']}:{item['eventCode']}:{item['success']}"
            )
            digest = base64.b64encode(hmac.new(key, signing.encode(), hashlib.sha256).digest())
            if not hmac.compare_digest(digest, item["additionalData"]["hmacSignature"].encode()):
                raise AssertionError("floor: bad signature")
        return data

    def ours() -> object:
        provider.verify(request)
        out = []
        for event in provider.parse(request):
            translation = provider.translate(event)
            if not translation.messages:
                raise AssertionError("the sample must translate")
            out.append(translation)
        return out

    # Interleaved rounds: the machine is shared, so load shifts hit both sides of each round alike.
    floors, ours_rates, ratios = [], [], []
    for _ in range(rounds):
        floors.append(_rate(floor, seconds / rounds))
        ours_rates.append(_rate(ours, seconds / rounds))
        ratios.append(ours_rates[-1] / floors[-1])
    ratio = statistics.median(ratios)
    print(f"floor (json.loads + HMAC per item):      {statistics.median(floors):10.0f} req/s")
    print(f"recoverkit-adyen verify+parse+translate: {statistics.median(ours_rates):10.0f} req/s")
    verdict = "OK" if ratio >= TARGET else "BELOW"
    print(
        f"ratio: {ratio:.1%} of floor, median of {rounds} rounds "
        f"(min {min(ratios):.1%}, max {max(ratios):.1%}; target >= {TARGET:.0%}) {verdict}"
    )
    return ratio


if __name__ == "__main__":
    main()
