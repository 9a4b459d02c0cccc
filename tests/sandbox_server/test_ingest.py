"""The sandbox answers Recover's ingest endpoints with Butter's documented statuses and bodies."""

from __future__ import annotations

from collections.abc import Callable

from sandbox_fakes import failed_payment
from starlette.testclient import TestClient

from recoverkit.sandbox.server.app import Sandbox

KEY = {"x-api-key": "sandbox_key"}


def test_valid_payment_is_accepted_with_a_request_id(make_sandbox: Callable[..., Sandbox]) -> None:
    client = TestClient(make_sandbox().app)
    response = client.post("/recover/payments", json=failed_payment(), headers=KEY)
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Request submitted for processing"
    assert body["request_id"]


def test_wrong_api_key_is_403_with_errors(make_sandbox: Callable[..., Sandbox]) -> None:
    client = TestClient(make_sandbox().app)
    response = client.post("/recover/payments", json=failed_payment(), headers={"x-api-key": "x"})
    assert response.status_code == 403
    assert response.json()["errors"] == ["missing or invalid x-api-key"]


def test_wrong_content_type_is_415(make_sandbox: Callable[..., Sandbox]) -> None:
    client = TestClient(make_sandbox().app)
    response = client.post(
        "/recover/payments", content=b"a=b", headers={**KEY, "content-type": "text/plain"}
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["errors"][0]


def test_invalid_body_is_400_naming_the_field(make_sandbox: Callable[..., Sandbox]) -> None:
    client = TestClient(make_sandbox().app)
    body = failed_payment()
    del body["transactions"][0]["currency"]
    response = client.post("/recover/payments", json=body, headers=KEY)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "transactions[0].currency"


def test_body_wrapper_is_400(make_sandbox: Callable[..., Sandbox]) -> None:
    client = TestClient(make_sandbox().app)
    response = client.post("/recover/payments", json={"body": failed_payment()}, headers=KEY)
    assert response.status_code == 400
    assert "wrapper" in response.json()["errors"][0]["message"]


def test_malformed_json_is_400(make_sandbox: Callable[..., Sandbox]) -> None:
    client = TestClient(make_sandbox().app)
    response = client.post(
        "/recover/payments", content=b"{nope", headers={**KEY, "content-type": "application/json"}
    )
    assert response.status_code == 400


def test_unknown_path_and_method_are_404(make_sandbox: Callable[..., Sandbox]) -> None:
    client = TestClient(make_sandbox().app)
    assert client.post("/recover/refunds", json={}, headers=KEY).status_code == 404
    response = client.get("/recover/payments", headers=KEY)
    assert response.status_code == 404
    assert response.json() == {"message": "Method not found"}


def test_payment_method_update_is_stored(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox()
    client = TestClient(sandbox.app)
    update = {"customer_id": "cus_1", "payment_method_id": "pm_2", "reason": "network_updated"}
    response = client.post("/recover/payment_method_updates", json=update, headers=KEY)
    assert response.status_code == 200
    updates = sandbox.book.payment_method_updates_since("cus_1", sandbox.clock.now())
    assert [pm for _, pm, _ in updates] == ["pm_2"]
