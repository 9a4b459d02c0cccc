"""Decline normalization: reference look-ups, plugin decline tables and ``normalize``."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from recoverkit.declines import (
    Advice,
    DeclineCategory,
    DeclineTable,
    MacAction,
    NormalizedDecline,
    ResponseType,
    iso_response,
    mac_code,
    mastercard_advice,
    normalize,
    visa_category,
)

SRC = "https://docs.example-psp.com/declines"
TABLE_CSV = f"""# version: 2026-11-30
# Example PSP decline table.
code,category,response_type,iso_response_code,advice,source,psp_label
insufficient_funds,insufficient_funds,soft_decline,51,try_again_later,{SRC},Not enough funds
do_not_honor,generic_soft,soft_decline,05,,{SRC},Do not honor
expired_card,card_data_invalid,hard_decline,54,,{SRC},Expired
pickup_card,lost_stolen,hard_decline,04,do_not_try_again,{SRC},Pick up
"""


@pytest.fixture
def table():
    return DeclineTable.from_text(TABLE_CSV, name="example/declines.csv")


# --- reference data ----------------------------------------------------------------------------


def test_iso_response_knows_do_not_honor_as_generic_soft():
    response = iso_response("05")
    assert response is not None
    assert response.category is DeclineCategory.GENERIC_SOFT
    assert response.response_type is ResponseType.SOFT
    assert response.source.startswith("https://")


def test_iso_response_is_case_insensitive_and_none_for_unknown_codes():
    assert iso_response(" 1a ") == iso_response("1A")
    assert iso_response("ZZ") is None


@pytest.mark.parametrize(
    ("iso", "category"),
    [("04", 1), ("R3", 1), ("14", 1), ("51", 2), ("5C", 2), ("54", 3), ("N7", 3), ("05", 4)],
)
def test_visa_category_follows_the_published_lists(iso, category):
    assert visa_category(iso) == category


def test_visa_puts_every_unlisted_decline_code_in_category_4():
    assert visa_category("Q7") == 4
    assert visa_category("  ") is None


@pytest.mark.parametrize(
    "raw", ["03", "3", " 03 ", "03 : Do not try again", "03: Do not try again"]
)
def test_mastercard_advice_reads_the_leading_two_digits(raw):
    advice = mastercard_advice(raw)
    assert advice is not None
    assert advice.code == "03"
    assert advice.action is MacAction.NEVER


def test_mastercard_advice_is_none_for_unknown_or_garbled_codes():
    assert mastercard_advice("99") is None
    assert mastercard_advice("") is None
    assert mac_code("123") is None
    assert mac_code("N/A") is None


# --- decline tables ----------------------------------------------------------------------------


def test_decline_table_looks_up_rows_with_their_extra_columns(table):
    row = table.lookup(" insufficient_funds ")
    assert row is not None
    assert row.category is DeclineCategory.INSUFFICIENT_FUNDS
    assert row.response_type is ResponseType.SOFT
    assert row.iso_response_code == "51"
    assert row.advice is Advice.TRY_AGAIN_LATER
    assert row.extra == {"psp_label": "Not enough funds"}
    assert row.line == 4
    assert table.lookup("no_such_code") is None
    assert [r.code for r in table.rows] == [
        "insufficient_funds",
        "do_not_honor",
        "expired_card",
        "pickup_card",
    ]
    assert table.version == "2026-11-30"
    table.validate()


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (f"x,made_up,soft_decline,,,{SRC}", "category 'made_up' is not one of"),
        (f"x,generic_soft,maybe,,,{SRC}", "response_type 'maybe' is not one of"),
        (f"x,generic_soft,soft_decline,,please,{SRC}", "advice 'please' is not one of"),
        ("x,generic_soft,soft_decline,,,", "source must be an http(s) URL"),
        ("x,generic_soft,soft_decline,,,docs.stripe.com", "source must be an http(s) URL"),
        (f"do_not_honor,generic_soft,soft_decline,,,{SRC}", "duplicate code 'do_not_honor'"),
    ],
)
def test_validate_names_the_file_and_row_of_a_bad_row(row, problem):
    table = DeclineTable.from_text(TABLE_CSV + row + "\n", name="example/declines.csv")
    with pytest.raises(ValueError, match="invalid decline table") as raised:
        table.validate()
    assert "example/declines.csv, row at line 8" in str(raised.value)
    assert problem in str(raised.value)


def test_a_bad_row_is_left_out_of_lookups_but_good_rows_still_work():
    table = DeclineTable.from_text(TABLE_CSV + "x,made_up,soft_decline,,,\n", name="t.csv")
    assert table.lookup("x") is None
    assert table.lookup("do_not_honor") is not None


def test_validate_rejects_an_empty_table():
    table = DeclineTable.from_text(
        "code,category,response_type,iso_response_code,advice,source\n", name="empty.csv"
    )
    with pytest.raises(ValueError, match=r"empty\.csv: the table has no rows"):
        table.validate()


def test_a_table_missing_a_required_column_fails_to_load():
    with pytest.raises(ValueError, match=r"broken.csv: missing column\(s\) response_type"):
        DeclineTable.from_text("code,category,iso_response_code,advice,source\n", name="broken.csv")


def test_decline_table_reads_a_file_from_a_path(tmp_path):
    path = tmp_path / "declines.csv"
    path.write_text(TABLE_CSV, encoding="utf-8")
    for source in (path, str(path)):
        table = DeclineTable.from_csv(source)
        assert table.name == str(path)
        assert table.lookup("expired_card") is not None


# --- normalize ---------------------------------------------------------------------------------


def test_normalize_maps_a_known_code_through_the_table(table):
    decline = normalize(table, "insufficient_funds", message="Your card has insufficient funds.")
    assert decline.category is DeclineCategory.INSUFFICIENT_FUNDS
    assert decline.response_type is ResponseType.SOFT
    assert decline.iso_response_code == "51"
    assert decline.advice is Advice.TRY_AGAIN_LATER
    assert decline.recognized is True
    assert decline.to_dict()["category"] == "insufficient_funds"


def test_unknown_code_falls_back_to_generic_soft_with_a_logged_warning(table, caplog):
    with caplog.at_level(logging.WARNING, logger="recoverkit.declines"):
        decline = normalize(table, "brand_new_code", message="Something new")
    assert decline.category is DeclineCategory.GENERIC_SOFT
    assert decline.response_type is ResponseType.SOFT
    assert decline.recognized is False
    assert decline.raw_code == "brand_new_code"
    [record] = caplog.records
    assert record.name == "recoverkit.declines"
    assert record.levelno == logging.WARNING
    assert "brand_new_code" in record.getMessage()
    assert "example/declines.csv" in record.getMessage()


def test_a_known_code_logs_nothing(table, caplog):
    with caplog.at_level(logging.DEBUG, logger="recoverkit.declines"):
        normalize(table, "do_not_honor")
    assert caplog.records == []


def test_visa_category_is_filled_from_the_iso_code_for_visa_only(table):
    assert normalize(table, "pickup_card", network="visa").visa_category == 1
    assert normalize(table, "do_not_honor", network="Visa").visa_category == 4
    assert normalize(table, "pickup_card", network="mastercard").visa_category is None
    assert normalize(table, "brand_new", network="visa").visa_category is None


def test_an_explicit_iso_code_wins_over_the_table(table):
    decline = normalize(table, "do_not_honor", iso_response_code="R1", network="visa")
    assert decline.iso_response_code == "R1"
    assert decline.visa_category == 1


@pytest.mark.parametrize("mac", ["03", "21", "21 : Payment cancellation"])
def test_mac_03_and_21_force_a_hard_decline_with_do_not_try_again(table, mac):
    decline = normalize(table, "insufficient_funds", mastercard_advice_code=mac)
    assert decline.response_type is ResponseType.HARD
    assert decline.advice is Advice.DO_NOT_TRY_AGAIN
    assert decline.mastercard_advice_code == mac[:2]
    assert decline.category is DeclineCategory.INSUFFICIENT_FUNDS  # the PSP's reason is kept


def test_mac_01_forces_retry_after_the_card_is_updated(table):
    decline = normalize(table, "do_not_honor", mastercard_advice_code="01 : New account info")
    assert decline.response_type is ResponseType.HARD
    assert decline.advice is Advice.CONFIRM_CARD_DATA
    assert decline.mastercard_advice_code == "01"


def test_mac_01_does_not_soften_do_not_try_again(table):
    decline = normalize(table, "pickup_card", mastercard_advice_code="01")
    assert decline.advice is Advice.DO_NOT_TRY_AGAIN


def test_a_retry_after_mac_keeps_the_decline_soft(table):
    decline = normalize(table, "insufficient_funds", mastercard_advice_code="27")
    assert decline.response_type is ResponseType.SOFT
    assert decline.mastercard_advice_code == "27"


def test_an_unparseable_mac_is_kept_as_received(table):
    decline = normalize(table, "do_not_honor", mastercard_advice_code=" N/A ")
    assert decline.mastercard_advice_code == "N/A"
    assert decline.response_type is ResponseType.SOFT


def test_a_psp_block_is_recorded_as_not_sent_to_network(table):
    decline = normalize(table, "do_not_honor", sent_to_network=False)
    assert decline.sent_to_network is False
    assert decline.to_dict()["sent_to_network"] is False


# --- an explicit "do not try again" --------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "table_type"),
    [
        ("insufficient_funds", ResponseType.SOFT),  # the row's own advice is try_again_later
        ("do_not_honor", ResponseType.SOFT),
        ("expired_card", ResponseType.HARD),
        ("brand_new_code", ResponseType.SOFT),  # not in the table: generic soft fallback
    ],
)
def test_explicit_do_not_try_again_advice_makes_any_code_hard(table, code, table_type):
    plain = normalize(table, code)
    assert plain.response_type is table_type
    decline = normalize(table, code, advice=Advice.DO_NOT_TRY_AGAIN)
    assert decline.response_type is ResponseType.HARD
    assert decline.advice is Advice.DO_NOT_TRY_AGAIN
    assert decline.category is plain.category  # the PSP's reason is kept
    assert decline.to_dict()["response_type"] == "hard_decline"


def test_a_row_advising_do_not_try_again_is_hard_even_if_the_row_says_soft():
    soft_row = DeclineTable.from_text(
        f"code,category,response_type,iso_response_code,advice,source\n"
        f"no_retry,generic_soft,soft_decline,,do_not_try_again,{SRC}\n",
        name="t.csv",
    )
    decline = normalize(soft_row, "no_retry")
    assert (decline.advice, decline.response_type) == (Advice.DO_NOT_TRY_AGAIN, ResponseType.HARD)


def test_other_advice_leaves_the_tables_type(table):
    decline = normalize(table, "do_not_honor", advice=Advice.TRY_AGAIN_LATER)
    assert decline.response_type is ResponseType.SOFT


def test_a_decline_built_by_hand_with_do_not_try_again_is_hard():
    # Plugins that build or copy a NormalizedDecline themselves get the same rule.
    decline = NormalizedDecline(
        category=DeclineCategory.GENERIC_SOFT,
        response_type=ResponseType.SOFT,
        raw_code="x",
        advice=Advice.DO_NOT_TRY_AGAIN,
    )
    assert decline.response_type is ResponseType.HARD
    copied = dataclasses.replace(decline, raw_code="y", response_type=ResponseType.SOFT)
    assert copied.response_type is ResponseType.HARD
    softened = dataclasses.replace(decline, advice=None, response_type=ResponseType.SOFT)
    assert softened.response_type is ResponseType.SOFT
