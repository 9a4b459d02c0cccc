"""Issue 11 item 5 and issue 10 item 10: Retry Results / End of Dunning cannot be replayed, an
expiry far in the future is refused, deep nesting is a 400, missing signing secrets a 503."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from service_support import Service, call
from test_merchant import EOD, KEY, RESULT, SECRET, forwarded  # noqa: F401 - fixture

from recoverkit.signing import signed_headers

BASIC_EOD = {"authorization": "Basic YnV0dGVyOnMzY3JldA=="}  # butter:s3cret


def _signed(raw: bytes, dedupe: str | None, expiry: int | None = None) -> dict[str, str]:
    expiry = int(time.time()) + 3600 if expiry is None else expiry
    return signed_headers(raw, secret=SECRET, expiry=expiry, dedupe_id=dedupe)


def _metric(service: Service, kind: str, outcome: str) -> float:
    counter = service.app.state.service.metrics.recover_webhooks.labels(kind, outcome)
    return float(counter._value.get())


def _new_dedupe_id(raw: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return raw, {**headers, "X-Butter-Webhook-Deduplication-ID": "attacker-1"}


def _no_dedupe_header(raw: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return raw, {k: v for k, v in headers.items() if "Deduplication" not in k}


def _pretty(raw: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    # The compact-form fallback accepts the original signature for a re-serialised copy.
    pretty = json.dumps(json.loads(raw), indent=2).encode()
    return pretty, {**headers, "X-Butter-Webhook-Deduplication-ID": "attacker-2"}


def _duplicated_key(raw: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    doubled = raw[:-1] + b',"invoice_id":"inv_1"}'  # re-serialises to the signed original
    return doubled, _no_dedupe_header(raw, headers)[1]


REPLAYS: list[Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]]] = [
    _new_dedupe_id,
    _no_dedupe_header,
    _pretty,
    _duplicated_key,
]


@pytest.mark.parametrize(
    ("path", "body", "auth", "kind", "effect"),
    [
        ("/webhooks/retry-results", RESULT, KEY, "retry_results", ("reconcile", "inv_1")),
        (
            "/webhooks/end-of-dunning",
            EOD,
            BASIC_EOD,
            "end_of_dunning",
            ("end_dunning:none", "inv_1"),
        ),
    ],
)
def test_replays_are_acknowledged_without_side_effects_and_counted(
    forwarded: Service,  # noqa: F811
    path: str,
    body: dict[str, object],
    auth: dict[str, str],
    kind: str,
    effect: tuple[str, str],
) -> None:
    raw = json.dumps(body, separators=(",", ":")).encode()
    headers = _signed(raw, "d-original")
    first = call(forwarded.app, "POST", path, content=raw, headers={**headers, **auth})
    assert first.status_code == 200, first.text
    assert forwarded.provider.calls == [effect]
    before = _metric(forwarded, kind, "replay")
    for replay in REPLAYS:
        replay_raw, replay_headers = replay(raw, headers)
        response = call(
            forwarded.app, "POST", path, content=replay_raw, headers={**replay_headers, **auth}
        )
        assert response.status_code == 200, (replay.__name__, response.text)
        assert response.json() == {"detail": "Event delivered successfully"}
    assert forwarded.provider.calls == [effect], "a replay ran the PSP update again"
    assert _metric(forwarded, kind, "replay") == before + len(REPLAYS)


def test_a_different_message_for_the_same_invoice_is_processed(
    forwarded: Service,  # noqa: F811
) -> None:
    for n, success in enumerate((False, True)):
        raw = json.dumps({**RESULT, "success": success}, separators=(",", ":")).encode()
        response = call(
            forwarded.app,
            "POST",
            "/webhooks/retry-results",
            content=raw,
            headers={**_signed(raw, None), **KEY},
        )
        assert response.status_code == 200
        assert len(forwarded.provider.calls) == n + 1


def test_an_expiry_far_in_the_future_is_refused(forwarded: Service) -> None:  # noqa: F811
    raw = json.dumps(RESULT, separators=(",", ":")).encode()
    ten_years = int(time.time()) + 10 * 365 * 24 * 3600
    response = call(
        forwarded.app,
        "POST",
        "/webhooks/retry-results",
        content=raw,
        headers={**_signed(raw, "d-far", ten_years), **KEY},
    )
    assert response.status_code == 401
    assert "too far in the future" in response.json()["detail"]
    assert forwarded.provider.calls == []
    # Within the bound (the default is a day) it is accepted.
    soon = int(time.time()) + int(forwarded.settings.butter_max_expiry_ahead) - 60
    response = call(
        forwarded.app,
        "POST",
        "/webhooks/retry-results",
        content=raw,
        headers={**_signed(raw, "d-soon", soon), **KEY},
    )
    assert response.status_code == 200


def test_401_bodies_reveal_no_clock_and_no_secret_count(forwarded: Service) -> None:  # noqa: F811
    raw = json.dumps(RESULT, separators=(",", ":")).encode()
    past = int(time.time()) - 7200
    response = call(
        forwarded.app,
        "POST",
        "/webhooks/retry-results",
        content=raw,
        headers={**_signed(raw, "d-old", past), **KEY},
    )
    assert response.status_code == 401
    text = response.json()["detail"]
    assert str(past) not in text
    assert not any(char.isdigit() for char in text), text
    assert "secret" not in text.lower()


@pytest.mark.parametrize("path", ["/webhooks/retry-results", "/webhooks/end-of-dunning"])
def test_deeply_nested_signed_body_is_400_and_nothing_applied(
    forwarded: Service,  # noqa: F811
    path: str,
) -> None:
    depth = 100_000
    raw = ('{"invoice_id":"inv_1","custom":' + "[" * depth + "]" * depth + "}").encode()
    auth = KEY if "retry" in path else BASIC_EOD
    response = call(forwarded.app, "POST", path, content=raw, headers={**_signed(raw, "d"), **auth})
    assert response.status_code == 400, response.text
    assert forwarded.provider.calls == []


def test_missing_signing_secrets_is_503_not_401(forwarded: Service) -> None:  # noqa: F811
    forwarded.app.state.service.settings = forwarded.settings.model_copy(
        update={"butter_signing_secrets": []}
    )
    raw = json.dumps(RESULT, separators=(",", ":")).encode()
    response = call(
        forwarded.app,
        "POST",
        "/webhooks/retry-results",
        content=raw,
        headers={**_signed(raw, "d"), **KEY},
    )
    assert response.status_code == 503
    assert "\n" not in response.json()["detail"]
    assert forwarded.provider.calls == []
