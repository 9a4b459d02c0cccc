"""Property tests: whatever bytes arrive, ``translate stripe`` exits 0, 2 or 3 with one line."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from recoverkit.cli import app

from .conftest import SECRET, body

FIXTURE = body("charge.failed.non_invoice")
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
_FIELDS = ["id", "object", "type", "created", "data", "api_version"]
BODIES = st.one_of(
    st.binary(max_size=300),
    st.integers(0, len(FIXTURE)).map(lambda n: FIXTURE[:n]),  # truncations
    st.integers(60, 3000).map(lambda n: b'{"data": ' * n + b"{}" + b"}" * n),  # deep nesting
    st.fixed_dictionaries({}, optional=dict.fromkeys(_FIELDS, _JSON)).map(
        lambda d: json.dumps({"object": "event", **d}).encode()
    ),  # wrong JSON types
    st.text(max_size=60).map(lambda t: t.encode("utf-16")),  # wrong encoding
)
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _run(tmp_path: Path, payload: bytes, *args: str) -> Any:
    path = tmp_path / "event.json"
    path.write_bytes(payload)
    return CliRunner().invoke(app, ["translate", "stripe", str(path), "--offline", *args])


@SETTINGS
@given(payload=BODIES)
def test_unverified_input_exits_0_or_2(tmp_path: Path, payload: bytes) -> None:
    result = _run(tmp_path, payload, "--no-verify")
    assert result.exit_code in (0, 2), result.output
    if result.exit_code:
        assert len(result.output.strip().splitlines()) == 1, result.output


@SETTINGS
@given(payload=BODIES)
def test_signed_input_exits_0_2_or_3(tmp_path: Path, payload: bytes) -> None:
    # A correct signature over hostile bytes (HMAC over the raw bytes, as Stripe computes it)
    # reaches parse and translate.
    ts = int(time.time())
    v1 = hmac.new(SECRET.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    header = f"t={ts},v1={v1}"
    result = _run(tmp_path, payload, "--secret", SECRET, "--header", f"Stripe-Signature: {header}")
    assert result.exit_code in (0, 2, 3), result.output
