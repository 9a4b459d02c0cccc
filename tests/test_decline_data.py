"""Reference data in recoverkit/data: present, versioned, sourced, within the closed sets."""

from __future__ import annotations

import csv
import io
import re
from importlib.resources import files

import pytest

from recoverkit.declines import (
    DeclineCategory,
    MacAction,
    ResponseType,
    data_version,
    iso_responses,
    mastercard_advices,
)

DATA = files("recoverkit.data")
DATA_FILES = sorted(entry.name for entry in DATA.iterdir() if entry.name.endswith(".csv"))
URL = re.compile(r"^https?://\S+$")


def read_rows(text: str) -> list[dict[str, str]]:
    body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
    return list(csv.DictReader(io.StringIO(body)))


def rows_without_source(text: str) -> list[int]:
    """1-based data-row numbers whose ``source`` is not an http(s) URL."""
    return [n for n, row in enumerate(read_rows(text), 1) if not URL.match(row.get("source") or "")]


def test_the_reference_files_are_shipped():
    assert {
        "iso8583_response_codes.csv",
        "mastercard_advice_codes.csv",
        "visa_categories.csv",
    } <= set(DATA_FILES)


@pytest.mark.parametrize("name", DATA_FILES)
def test_every_data_file_declares_its_version(name):
    first_line = DATA.joinpath(name).read_text(encoding="utf-8").splitlines()[0]
    assert re.fullmatch(r"# version: \d{4}-\d{2}-\d{2}", first_line)
    assert data_version(name) == first_line.removeprefix("# version: ")


@pytest.mark.parametrize("name", DATA_FILES)
def test_every_row_of_every_data_file_cites_a_source_url(name):
    text = DATA.joinpath(name).read_text(encoding="utf-8")
    assert read_rows(text), f"{name} has no rows"
    assert rows_without_source(text) == []


def test_source_check_catches_a_row_without_a_url():
    text = "# version: 2026-01-01\ncode,source\n05,https://example.com/a\n51,\n54,see the docs\n"
    assert rows_without_source(text) == [2, 3]


def test_every_iso_row_maps_to_a_category_a_response_type_and_a_visa_category():
    rows = read_rows(DATA.joinpath("iso8583_response_codes.csv").read_text(encoding="utf-8"))
    assert len(rows) == len(iso_responses())  # no duplicate codes
    for row in rows:
        assert row["category"] in set(DeclineCategory), row
        assert row["response_type"] in set(ResponseType), row
        assert row["visa_category"] in {"", "1", "2", "3", "4"}, row


def test_visa_category_1_codes_are_the_published_never_list():
    category_1 = {code for code, row in iso_responses().items() if row.visa_category == 1}
    assert category_1 == {"04", "07", "12", "14", "15", "41", "43", "46", "57", "R0", "R1", "R3"}


def test_codes_moved_to_visa_category_2_are_not_in_category_1():
    for code in ("03", "62", "78", "93", "39", "52", "53", "Z5", "5C", "9G"):
        assert iso_responses()[code].visa_category == 2, code


def test_mastercard_retry_after_codes_carry_their_delays_in_hours():
    delays = {
        code: advice.delay.total_seconds() / 3600
        for code, advice in mastercard_advices().items()
        if advice.delay is not None
    }
    assert delays == {"24": 1, "25": 24, "26": 48, "27": 96, "28": 144, "29": 192, "30": 240}
    assert all(mastercard_advices()[code].action is MacAction.DELAY for code in delays)


def test_only_mac_03_and_21_forbid_any_retry():
    never = {code for code, advice in mastercard_advices().items() if advice.action == "never"}
    assert never == {"03", "21"}
    assert mastercard_advices()["01"].action is MacAction.AFTER_PAYMENT_METHOD_CHANGE
