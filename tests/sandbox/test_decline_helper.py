"""Issue 14: policy authors build declines from codes without the simulator."""

from __future__ import annotations

import pytest
from sandbox_helpers import T0

from recoverkit.declines import Advice, DeclineCategory, ResponseType
from recoverkit.rules import Verdict, may_retry
from recoverkit.sandbox.policies.declines import decline_from_codes


def test_iso_code_through_the_core_table() -> None:
    d = decline_from_codes("51", network="Visa")
    assert d.category is DeclineCategory.INSUFFICIENT_FUNDS
    assert d.response_type is ResponseType.SOFT
    assert d.iso_response_code == "51"
    assert d.visa_category == 2
    assert d.network == "visa"
    assert d.recognized


def test_iso_59_is_visa_category_2_not_1() -> None:
    assert decline_from_codes("59", network="visa").visa_category == 2
    assert decline_from_codes("41", network="visa").visa_category == 1


def test_mastercard_mac_03_makes_it_a_never() -> None:
    d = decline_from_codes("05", network="mastercard", mac="03")
    assert d.response_type is ResponseType.HARD
    assert d.advice is Advice.DO_NOT_TRY_AGAIN
    assert may_retry(d, [], now=T0).verdict is Verdict.NEVER


def test_psp_advice_is_kept_and_unknown_codes_fall_back() -> None:
    d = decline_from_codes("05", network="amex", advice="do_not_try_again")
    assert d.advice is Advice.DO_NOT_TRY_AGAIN
    assert may_retry(d, [], now=T0).verdict is Verdict.NEVER
    unknown = decline_from_codes("Q9", network="visa")
    assert unknown.category is DeclineCategory.GENERIC_SOFT
    assert not unknown.recognized


@pytest.mark.parametrize("bad", ["", "  "])
def test_blank_code_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="iso"):
        decline_from_codes(bad)


def test_bad_advice_is_refused() -> None:
    with pytest.raises(ValueError, match="advice"):
        decline_from_codes("05", advice="maybe")
