"""``extra_psp_names`` is read by the bridge: a Payments message naming a PSP outside Butter's list
is forwarded only when the setting names it."""

from __future__ import annotations

from dataclasses import replace

from fake_provider import charge_event, signed
from service_support import Service, call
from sqlalchemy import select

from recoverkit.provider import ProviderEvent, RecoverMessage, Translation
from recoverkit.schema import PaymentEvent
from recoverkit.store import inbox


def _as_acmepay(service: Service) -> None:
    """The fake provider's messages claim the PSP "acmepay" (not on Butter's list)."""
    original = service.provider.translate

    def translate(event: ProviderEvent) -> Translation:
        translation = original(event)
        messages = []
        for message in translation.messages:
            body = message.body
            if isinstance(body, PaymentEvent):
                transactions = [t.model_copy(update={"psp": "acmepay"}) for t in body.transactions]
                body = body.model_copy(update={"transactions": transactions})
            messages.append(RecoverMessage(body, message.dedupe_key, message.decline))
        return replace(translation, messages=tuple(messages))

    service.provider.translate = translate  # type: ignore[method-assign]


def _deliver_and_drain(service: Service) -> None:
    raw, headers = signed(charge_event("evt_acme"))
    assert (
        call(service.app, "POST", "/webhooks/fake", content=raw, headers=headers).status_code == 200
    )
    service.drain()


def test_an_unlisted_psp_is_held_back_naming_the_setting(service: Service) -> None:
    _as_acmepay(service)
    _deliver_and_drain(service)
    assert service.recover.accepted == []
    with service.engine.connect() as conn:
        row = conn.execute(select(inbox)).one()
    assert "extra_psp_names" in (row.last_error or "")
    assert "'acmepay'" in (row.last_error or "")


def test_extra_psp_names_lets_it_through(service: Service) -> None:
    _as_acmepay(service)
    service.worker.settings = service.settings.model_copy(update={"extra_psp_names": ["acmepay"]})
    _deliver_and_drain(service)
    assert service.recover.paths() == ["/recover/payments"]
