"""Malformed input at the Provider boundary: JSON decoding and the body-size limit."""

from __future__ import annotations

from pathlib import Path

import pytest
from example_provider import TEST_SECRET, ExampleProvider, sample_body
from typer.testing import CliRunner

from recoverkit.cli import app
from recoverkit.errors import MalformedWebhookError
from recoverkit.provider import MAX_JSON_DEPTH, WebhookRequest, decode_json


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"[" * 100_000, "nests deeper"),  # past the interpreter's recursion limit
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "nests deeper"),
        (b'{"a": "\xff"}', "not UTF-8"),
        (b'{"a": ', "not valid JSON"),
    ],
)
def test_bad_json_is_malformed_input_never_a_python_error(body: bytes, problem: str) -> None:
    with pytest.raises(MalformedWebhookError, match=problem):
        decode_json(body, provider="example")
    with pytest.raises(MalformedWebhookError, match=problem):
        WebhookRequest(body).json()


def test_nesting_up_to_the_limit_is_accepted() -> None:
    depth = MAX_JSON_DEPTH
    nested: list[object] = []
    for _ in range(depth - 1):
        nested = [nested]
    assert decode_json(b"[" * depth + b"]" * depth) == nested
    assert decode_json('{"brackets in text": "[[[[[[[["}', max_depth=1) == {
        "brackets in text": "[[[[[[[["
    }


def test_every_plugin_refuses_an_oversize_body_before_parsing() -> None:
    provider = ExampleProvider.from_overrides(webhook_secrets=[TEST_SECRET], max_body_bytes=2048)
    small = provider.sign_test_webhook(sample_body("charge_failed"))
    provider.verify(small)
    assert provider.parse(small)
    big = provider.sign_test_webhook(sample_body("charge_failed") + b" " * 4096)
    for step in (provider.verify, provider.parse):
        with pytest.raises(MalformedWebhookError, match="over the 2048-byte limit"):
            step(big)


def test_the_default_limit_is_the_services_one_mib() -> None:
    provider = ExampleProvider.with_webhook_secret(TEST_SECRET)
    assert provider.settings.max_body_bytes == 1_048_576
    body = b'{"pad": "' + b"x" * 1_048_576 + b'"}'
    with pytest.raises(MalformedWebhookError, match="RECOVERKIT_EXAMPLE_MAX_BODY_BYTES"):
        provider.parse(WebhookRequest(body))


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"object": "event", "id": "evt_1", "data": ' * 200 + b"{}" + b"}" * 200,
        b'{"id": "\xff\xfe"}',
        b"[1, 2, 3]",
        b'{"object": "event", "id": 7, "type": [], "data": "x", "created": "now"}',
        b'{"object": "event", "id": "evt_1", "type": "charge.failed", "data": {"object": []}}',
        b"",
    ],
    ids=["deep", "deep-objects", "not-utf8", "array", "wrong-types", "object-not-dict", "empty"],
)
def test_translate_exits_2_with_one_line_for_bad_stripe_input(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "event.json"
    path.write_bytes(body)
    result = CliRunner().invoke(app, ["translate", "stripe", str(path), "--no-verify", "--offline"])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
