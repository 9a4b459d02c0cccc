"""Malformed and hostile webhooks are bad input, never a bug (issue 10 items 10, 11, 13; issue 11
item 7; issue 15 item 1).

Each case goes through ``verify`` (signed with the test key pair, so the signature is not what
fails), ``parse`` without ``verify`` (``translate --no-verify``), and ``translate``. Allowed
outcomes: success, :class:`WebhookError` (HTTP 400/401, CLI exit 2/3) or, for translate, a
:class:`RecoverkitError` naming a missing fact — never another exception.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from urllib.parse import urlencode

import pytest
from bt_support import PAIR, make_provider
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recoverkit_braintree import webhooks
from recoverkit_braintree.provider import BraintreeProvider
from typer.testing import CliRunner

from recoverkit.cli import app
from recoverkit.errors import MalformedWebhookError, RecoverkitError, SignatureError, WebhookError
from recoverkit.facts import NoFacts
from recoverkit.provider import WebhookRequest

SAMPLES = Path(str(files("recoverkit_braintree") / "samples"))
PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _notification(kind: str, subject: str, *, stamp: str | None = None) -> bytes:
    timestamp = stamp if stamp is not None else f'<timestamp type="datetime">{_now()}</timestamp>'
    return (
        f"<notification>{timestamp}<kind>{kind}</kind><subject>{subject}</subject></notification>"
    ).encode()


def _signed(xml: bytes) -> WebhookRequest:
    form = webhooks.sign_payload(xml, PAIR["public_key"], PAIR["private_key"])
    return WebhookRequest(
        webhooks.form_body(form), {"content-type": "application/x-www-form-urlencoded"}
    )


def _offline_provider() -> BraintreeProvider:
    provider = make_provider()
    provider.facts_source = NoFacts()  # translate never calls Braintree from these tests
    return provider


def _run_everything(provider: BraintreeProvider, request: WebhookRequest) -> None:
    """verify → parse → translate, then parse and translate again without verify."""
    for verified in (True, False):
        fresh = _offline_provider() if not verified else provider
        try:
            if verified:
                fresh.verify(request)
            events = fresh.parse(request)
        except WebhookError:
            continue
        for event in events:
            with contextlib.suppress(RecoverkitError):
                fresh.translate(event)


DEEP = 100_000
MALFORMED_SIGNED = {
    "payload is not UTF-8": _notification("subscription_went_past_due", "<x>\xff</x>").replace(
        b"\xc3\xbf", b"\xff\xfe"
    ),
    "UTF-16 document": _notification("check", "<check>true</check>").decode().encode("utf-16"),
    "empty subject": _notification("subscription_went_past_due", ""),
    "subject is text": _notification("subscription_charged_unsuccessfully", "just text"),
    "subscription is text": _notification(
        "subscription_charged_unsuccessfully", "<subscription>abc</subscription>"
    ),
    "no kind": b'<notification><timestamp type="datetime">'
    + _now().encode()
    + b"</timestamp><subject><check>true</check></subject></notification>",
    "timestamp is not a datetime": _notification(
        "check", "<check>true</check>", stamp="<timestamp>yesterday</timestamp>"
    ),
    "deep nesting": _notification("subscription_went_past_due", "<a>" * DEEP + "</a>" * DEEP),
    "not XML": b"this is not xml at all <<<",
    "truncated XML": _notification("check", "<check>true</check>")[:40],
}


@pytest.mark.parametrize("name", sorted(MALFORMED_SIGNED))
def test_signed_but_unreadable_notification_is_malformed(name: str) -> None:
    request = _signed(MALFORMED_SIGNED[name])
    with pytest.raises(MalformedWebhookError) as raised:
        make_provider().verify(request)
    assert "\n" not in str(raised.value)
    # Without verify (translate --no-verify) the same body is bad input too.
    with pytest.raises(MalformedWebhookError):
        _offline_provider().parse(request)


TRANSLATE_MALFORMED = {
    # Each kind's subject lacks what Braintree always sends with it.
    "charged, transactions are text": _notification(
        "subscription_charged_unsuccessfully",
        "<subscription><id>sub_1</id><transactions>oops</transactions></subscription>",
    ),
    "past due, subscription without id": _notification(
        "subscription_went_past_due", "<subscription><plan-id>p</plan-id></subscription>"
    ),
    "revoked, no metadata": _notification(
        "payment_method_revoked_by_customer", "<paypal-account></paypal-account>"
    ),
    "settlement declined, transaction without id": _notification(
        "transaction_settlement_declined", "<transaction><amount>1.00</amount></transaction>"
    ),
}


@pytest.mark.parametrize("name", sorted(TRANSLATE_MALFORMED))
def test_notification_missing_what_its_kind_carries_fails_translate_as_bad_input(
    name: str,
) -> None:
    provider = _offline_provider()
    request = _signed(TRANSLATE_MALFORMED[name])
    try:
        provider.verify(request)
        [event] = provider.parse(request)
    except MalformedWebhookError:
        return  # refused even earlier: also bad input
    with pytest.raises(WebhookError):
        provider.translate(event)


# -- issue 11 item 7: a timestamp from the future ---------------------------------------------


def test_timestamp_too_far_in_the_future_is_refused() -> None:
    provider = make_provider()
    xml = (SAMPLES / "payment_method_revoked_by_customer.xml").read_bytes()
    ahead = datetime.now(UTC) + provider.settings.webhook_max_clock_skew + timedelta(minutes=2)
    with pytest.raises(SignatureError, match="ahead of this server's clock"):
        provider.verify(provider.sign_test_webhook(xml, timestamp=ahead))


def test_timestamp_slightly_ahead_is_clock_skew_and_accepted() -> None:
    provider = make_provider()
    xml = (SAMPLES / "payment_method_revoked_by_customer.xml").read_bytes()
    ahead = datetime.now(UTC) + timedelta(seconds=30)
    provider.verify(provider.sign_test_webhook(xml, timestamp=ahead))


def test_future_skew_is_a_setting() -> None:
    provider = make_provider(webhook_max_clock_skew="PT1H")
    xml = (SAMPLES / "payment_method_revoked_by_customer.xml").read_bytes()
    provider.verify(
        provider.sign_test_webhook(xml, timestamp=datetime.now(UTC) + timedelta(minutes=30))
    )


# -- issue 15 item 1: parse without verify accepts bare XML and the form -----------------------


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.xml")), ids=lambda p: p.stem)
def test_unverified_parse_accepts_a_bare_sample_notification(path: Path) -> None:
    xml = path.read_bytes()
    provider = _offline_provider()
    [event] = provider.parse(WebhookRequest(xml))
    assert event.type == path.stem
    # The same XML signed as Braintree posts it gives the same event and dedupe key.
    signed = _signed(xml)
    [from_form] = _offline_provider().parse(signed)
    assert (from_form.dedupe_key, from_form.type) == (event.dedupe_key, event.type)


def test_unverified_parse_accepts_a_form_without_signature() -> None:
    xml = (SAMPLES / "payment_method_revoked_by_customer.xml").read_bytes()
    body = urlencode({"bt_payload": base64.encodebytes(xml)}).encode()
    [event] = _offline_provider().parse(WebhookRequest(body))
    assert event.type == "payment_method_revoked_by_customer"


def test_parse_without_verify_caches_nothing_verify_would_trust() -> None:
    provider = make_provider()
    xml = (SAMPLES / "payment_method_revoked_by_customer.xml").read_bytes()
    forged = WebhookRequest(
        urlencode(
            {
                "bt_signature": f"{PAIR['public_key']}|{'0' * 40}",
                "bt_payload": base64.encodebytes(xml),
            }
        ).encode()
    )
    provider.parse(forged)
    with pytest.raises(SignatureError):
        provider.verify(forged)


@pytest.mark.parametrize(
    "body",
    [b"", b"hello", b'{"kind": "check"}', b"bt_signature=a%7Cb", b"\x00\xff\xfe", b"a=b&c=d"],
)
def test_body_that_is_neither_form_nor_xml_is_bad_input(body: bytes) -> None:
    with pytest.raises(MalformedWebhookError):
        _offline_provider().parse(WebhookRequest(body))


# -- the CLI: exit 2 for bad input, 3 for a signature failure, never 1 -------------------------

runner = CliRunner()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("KEY_PAIRS", "MERCHANT_ID", "API_BASE_URL"):
        monkeypatch.delenv(f"RECOVERKIT_BRAINTREE_{name}", raising=False)
    monkeypatch.delenv("RECOVERKIT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./recoverkit.toml
    return tmp_path


def _cli(*args: str) -> int:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exit_code != 1, result.stderr
    return result.exit_code


def test_cli_no_verify_translates_a_bundled_xml_sample(clean_env: Path) -> None:
    sample = SAMPLES / "payment_method_revoked_by_customer.xml"
    assert _cli("translate", "braintree", str(sample), "--no-verify") == 0
    charged = SAMPLES / "subscription_charged_unsuccessfully.xml"
    assert _cli("translate", "braintree", str(charged), "--no-verify", "--offline") == 0


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("junk", b"not a webhook"),
        ("form without payload", b"bt_signature=pk%7Cabc"),
        ("random bytes", bytes(range(256))),
        ("empty subject", _notification("subscription_went_past_due", "")),
    ],
)
def test_cli_no_verify_bad_input_exits_2(clean_env: Path, name: str, body: bytes) -> None:
    path = clean_env / "body"
    path.write_bytes(body)
    assert _cli("translate", "braintree", str(path), "--no-verify") == 2, name


@pytest.mark.parametrize("name", sorted(MALFORMED_SIGNED))
def test_cli_signed_malformed_exits_2(clean_env: Path, name: str) -> None:
    path = clean_env / "body"
    path.write_bytes(_signed(MALFORMED_SIGNED[name]).body)
    secret = f"{PAIR['public_key']}:{PAIR['private_key']}"
    assert _cli("translate", "braintree", str(path), "--secret", secret) == 2, name


def test_cli_future_timestamp_is_a_signature_failure(clean_env: Path) -> None:
    provider = make_provider()
    xml = (SAMPLES / "payment_method_revoked_by_customer.xml").read_bytes()
    path = clean_env / "body"
    ahead = datetime.now(UTC) + timedelta(hours=2)
    path.write_bytes(provider.sign_test_webhook(xml, timestamp=ahead).body)
    secret = f"{PAIR['public_key']}:{PAIR['private_key']}"
    assert _cli("translate", "braintree", str(path), "--secret", secret) == 3


# -- property tests (issue 10 item 13) --------------------------------------------------------


def _valid_body() -> bytes:
    xml = (SAMPLES / "payment_method_revoked_by_customer.xml").read_bytes()
    return make_provider().sign_test_webhook(xml).body


@PROPERTY
@given(st.binary(max_size=2048))
def test_random_bytes_are_refused_as_bad_input_or_bad_signature(body: bytes) -> None:
    _run_everything(make_provider(), WebhookRequest(body))


@PROPERTY
@given(st.data())
def test_truncated_bodies_never_raise_anything_else(data: st.DataObject) -> None:
    body = _valid_body()
    cut = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    _run_everything(make_provider(), WebhookRequest(body[:cut]))


_names = st.sampled_from(
    ["subscription", "transaction", "id", "transactions", "status", "kind", "a", "subject"]
)
_leaf = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12).map(
        lambda t: t.replace("&", "&amp;").replace("<", "&lt;")
    ),
    st.just('<x type="array"></x>'),
    st.just('<created-at type="datetime">not a date</created-at>'),
)


def _tree(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(_names, st.lists(children, max_size=3)).map(
        lambda nt: f"<{nt[0]}>{''.join(nt[1])}</{nt[0]}>"
    )


_subjects = st.recursive(_leaf, _tree, max_leaves=12)
_kinds = st.sampled_from(
    [
        "subscription_charged_unsuccessfully",
        "subscription_charged_successfully",
        "subscription_went_past_due",
        "transaction_settlement_declined",
        "payment_method_revoked_by_customer",
        "payment_method_customer_data_updated",
        "account_updater_daily_report",
        "check",
        "",
    ]
)
_encodings: st.SearchStrategy[Callable[[str], bytes]] = st.sampled_from(
    [
        lambda t: t.encode("utf-8"),
        lambda t: t.encode("utf-16"),
        lambda t: t.encode("latin-1", "replace"),
    ]
)


@PROPERTY
@given(_kinds, _subjects, _encodings, st.integers(min_value=0, max_value=3000))
def test_signed_notifications_of_any_shape_are_bad_input_at_worst(
    kind: str, subject: str, encode: Callable[[str], bytes], depth: int
) -> None:
    nested = "<n>" * depth + subject + "</n>" * depth
    xml = encode(_notification(kind, nested).decode())
    _run_everything(_offline_provider(), _signed(xml))
