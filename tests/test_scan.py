"""Card-number, CVC and secret detection used by the kit and the pre-stop checks."""

from __future__ import annotations

from recoverkit.testing.scan import luhn_valid, scan_text, with_check_digit

# Built at run time so that no card-like number or live-looking key is stored in the repository.
PAN = with_check_digit("453957876362148")
LIVE_KEY = "sk_" + "live_" + "abcdefgh1234"


def test_luhn() -> None:
    assert luhn_valid("4242424242424242")
    assert not luhn_valid("4242424242424241")


def test_documented_test_cards_are_allowed() -> None:
    assert scan_text('{"number": "4242424242424242"}') == []


def test_real_looking_card_number_is_found_and_masked() -> None:
    findings = scan_text(f"pan={PAN} end")
    assert [f.kind for f in findings] == ["card number"]
    assert PAN not in str(findings[0])
    assert f"{PAN[:6]}…{PAN[-4:]}" in str(findings[0])


def test_ids_and_timestamps_are_not_card_numbers() -> None:
    assert scan_text('{"created": 1764460800, "id": "1040432066964226052"}') == []


def test_cvc_values_and_live_secrets_are_found() -> None:
    kinds = [f.kind for f in scan_text('{"cvc": "123", "key": "' + LIVE_KEY + '"}')]
    assert kinds == ["card security code", "secret"]
    assert scan_text('{"cvc_check": "pass"}') == []
