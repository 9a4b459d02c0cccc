"""The service's ``POST /webhooks/braintree`` with hostile bodies (issue 10 items 10 and 13).

The real Braintree provider behind the real ASGI app and a migrated SQLite store: only 2xx or
4xx answers, 400 for bad input, 401 for a bad or future-dated signature, and nothing stored for
a refused request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from bt_support import make_provider
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from test_hostile_input import MALFORMED_SIGNED, SAMPLES, _signed

from recoverkit import Plugins
from recoverkit.config import load_settings
from recoverkit.service import create_app
from recoverkit.store import make_engine, upgrade
from recoverkit.store.tables import inbox

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Engine]]:
    folder = tmp_path_factory.mktemp("bt_service")
    url = f"sqlite:///{folder / 'rk.db'}"
    engine = make_engine(url)
    upgrade(engine)
    config = load_settings(
        None,
        database_url=url,
        recover_api_key="rk_test_key",
        recover_base_url="http://recover.test/recover",
    )
    app = create_app(
        config,
        Plugins(load_entry_points=False),
        engine,
        providers={"braintree": make_provider()},
        run_worker=False,
    )
    yield app, engine
    engine.dispose()


def _post(app: Any, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rk") as client:
            return await client.post("/webhooks/braintree", content=body, headers=headers or FORM)

    return asyncio.run(go())


def _stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(inbox)).scalar_one())


@pytest.mark.parametrize("name", sorted(MALFORMED_SIGNED))
def test_signed_malformed_notification_is_400_and_not_stored(
    service: tuple[Any, Engine], name: str
) -> None:
    app, engine = service
    before = _stored(engine)
    response = _post(app, _signed(MALFORMED_SIGNED[name]).body)
    assert response.status_code == 400, (name, response.text)
    assert _stored(engine) == before


def test_form_without_payload_is_400(service: tuple[Any, Engine]) -> None:
    app, engine = service
    before = _stored(engine)
    assert _post(app, b"bt_signature=pk%7Cabc").status_code == 400
    assert _stored(engine) == before


def test_future_dated_notification_is_401_and_a_valid_one_is_stored(
    service: tuple[Any, Engine],
) -> None:
    app, engine = service
    provider = make_provider()
    xml = (SAMPLES / "payment_method_revoked_by_customer.xml").read_bytes()
    before = _stored(engine)
    ahead = provider.sign_test_webhook(xml, timestamp=datetime.now(UTC) + timedelta(hours=1))
    assert _post(app, ahead.body).status_code == 401
    assert _stored(engine) == before
    assert _post(app, provider.sign_test_webhook(xml).body).status_code == 200
    assert _stored(engine) == before + 1


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.binary(max_size=1024),
        st.sampled_from(sorted(MALFORMED_SIGNED)).map(lambda n: _signed(MALFORMED_SIGNED[n]).body),
    ),
    cut=st.integers(min_value=0, max_value=4096),
    content_type=st.sampled_from(
        ["application/x-www-form-urlencoded", "application/xml", "text/plain; charset=latin-1"]
    ),
)
def test_hostile_bodies_never_get_a_5xx(
    service: tuple[Any, Engine], body: bytes, cut: int, content_type: str
) -> None:
    app, engine = service
    before = _stored(engine)
    response = _post(app, body[:cut], {"content-type": content_type})
    assert 400 <= response.status_code < 500, response.text
    assert _stored(engine) == before
