"""``translate --offline`` / ``--facts`` and ``samples`` with the real Stripe plugin: no network.

The Stripe plugin fetches facts a webhook lacks through the API; here no API key is set and the
API base points at a closed port, so any attempted call would fail the test with exit code 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recoverkit.cli import app
from recoverkit.facts import FactNotAvailable, FactsFile, NoFacts, lookup

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_stripe_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECOVERKIT_STRIPE_API_KEY", raising=False)
    monkeypatch.setenv("RECOVERKIT_STRIPE_API_BASE", "http://127.0.0.1:9")
    monkeypatch.setenv("RECOVERKIT_LOAD_PLUGINS", "stripe")


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def stripe_samples(tmp_path: Path) -> Path:
    code, out, err = _run("samples", "stripe", "--out", str(tmp_path))
    assert code == 0, err
    folder = tmp_path / "stripe"
    assert str(folder / "invoice.payment_failed.json") in out
    return folder


def test_samples_writes_the_webhooks_and_their_facts(stripe_samples: Path) -> None:
    names = sorted(p.name for p in stripe_samples.iterdir())
    assert names == [
        "facts.json",
        "invoice.payment_failed.json",
        "invoice.payment_succeeded.json",
        "payment_method.automatically_updated.json",
    ]
    facts = json.loads((stripe_samples / "facts.json").read_text())
    assert {c["id"] for c in facts["charge"]} >= {"ch_RKfail01"}


def test_offline_translates_what_the_payload_carries(stripe_samples: Path) -> None:
    code, out, _ = _run(
        "translate",
        "stripe",
        str(stripe_samples / "payment_method.automatically_updated.json"),
        "--no-verify",
        "--offline",
    )
    assert code == 0
    message = json.loads(out)
    assert message["endpoint"] == "payment_method_updates"
    assert message["body"]["customer_id"] == "cus_RKdemo01"


def test_offline_says_what_enrichment_would_have_added(stripe_samples: Path) -> None:
    code, out, err = _run(
        "translate",
        "stripe",
        str(stripe_samples / "invoice.payment_failed.json"),
        "--no-verify",
        "--offline",
    )
    assert code == 0
    line = json.loads(out)
    assert line["offline"] == "invoice.payment_failed"
    assert line["needs"]["object"] == "invoice_payments"
    assert line["needs"]["id"] == "in_RKdemo01"
    assert "charge" in line["needs"]["adds"]
    assert "--facts FILE" in err


def test_facts_file_gives_the_full_translation(stripe_samples: Path) -> None:
    facts = str(stripe_samples / "facts.json")
    code, out, _ = _run(
        "translate",
        "stripe",
        str(stripe_samples / "invoice.payment_failed.json"),
        "--no-verify",
        "--facts",
        facts,
    )
    assert code == 0, out
    message = json.loads(out)
    assert message["decline"]["category"] == "insufficient_funds"
    transaction = message["body"]["transactions"][0]
    assert (transaction["funding_source"], transaction["scheme"]) == ("DEBIT", "visa")
    assert message["body"]["subscription"]["start_date"] == "2025-11-01T00:00:00Z"


def test_facts_file_missing_an_object_exits_2_naming_it(
    stripe_samples: Path, tmp_path: Path
) -> None:
    facts = json.loads((stripe_samples / "facts.json").read_text())
    del facts["subscription"]
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(facts))
    code, out, err = _run(
        "translate",
        "stripe",
        str(stripe_samples / "invoice.payment_failed.json"),
        "--no-verify",
        "--facts",
        str(partial),
    )
    assert (code, out) == (2, "")
    assert "holds no subscription 'sub_RKdemo01'" in err
    assert err.count("stripe:") == 1
    assert len(err.strip().splitlines()) == 1


def test_bad_facts_files_exit_2(stripe_samples: Path, tmp_path: Path) -> None:
    webhook = str(stripe_samples / "invoice.payment_failed.json")
    for content, problem in [
        ("{nope", "is not JSON"),
        ('["charge"]', "expected an object"),
        ('{"charge": [{"no_id": 1}]}', "charge[0] is not an object with an id"),
    ]:
        bad = tmp_path / "bad.json"
        bad.write_text(content)
        code, _, err = _run("translate", "stripe", webhook, "--no-verify", "--facts", str(bad))
        assert (code, problem in err) == (2, True), err
    code, _, err = _run(
        "translate", "stripe", webhook, "--no-verify", "--facts", str(tmp_path / "none.json")
    )
    assert (code, "cannot read facts file" in err) == (2, True)
    code, _, err = _run(
        "translate", "stripe", webhook, "--offline", "--facts", str(tmp_path / "x.json")
    )
    assert (code, "exclude each other" in err) == (2, True)


def test_without_offline_stripe_still_needs_its_api_key(stripe_samples: Path) -> None:
    code, _, err = _run(
        "translate", "stripe", str(stripe_samples / "invoice.payment_failed.json"), "--no-verify"
    )
    assert code == 2
    assert "RECOVERKIT_STRIPE_API_KEY" in err
    assert "stripe: stripe:" not in err


def test_fact_sources() -> None:
    source = FactsFile.index({"charge": {"ch_1": {"id": "ch_1"}}, "sub": [{"id": "s"}]}, "t")
    facts = FactsFile(source, origin="t.json")
    assert lookup(facts, provider="p", kind="sub", object_id="s", adds="x") == {"id": "s"}
    with pytest.raises(FactNotAvailable, match=r"t.json holds no charge 'ch_2' \(needed for x\)"):
        lookup(facts, provider="p", kind="charge", object_id="ch_2", adds="x")
    with pytest.raises(FactNotAvailable, match="enrichment would fetch charge ch_1 for x") as info:
        lookup(NoFacts(), provider="p", kind="charge", object_id="ch_1", adds="x")
    assert info.value.as_dict() == {"object": "charge", "id": "ch_1", "adds": "x"}


BRAINTREE_TEST_PAIR = "recoverkit_test_public:recoverkit_test_private"  # the plugin's demo pair


def test_braintree_offline_and_facts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERKIT_LOAD_PLUGINS", "braintree")
    monkeypatch.setenv("RECOVERKIT_BRAINTREE_API_BASE_URL", "http://127.0.0.1:9")
    code, _, err = _run("samples", "braintree", "--out", str(tmp_path))
    assert code == 0, err
    folder = tmp_path / "braintree"
    webhook = str(folder / "subscription_charged_unsuccessfully.txt")
    common = ["translate", "braintree", webhook, "--secret", BRAINTREE_TEST_PAIR]
    code, out, _ = _run(*common, "--offline")
    assert code == 0
    needs = json.loads(out)["needs"]
    assert (needs["object"], needs["id"]) == ("transaction", "txn_declined_1")
    code, out, err = _run(*common, "--facts", str(folder / "facts.json"))
    assert code == 0, err
    message = json.loads(out)
    assert message["endpoint"] == "payments"
    assert message["body"]["subscription"]["id"] == "sub_demo_1"
    assert message["decline"] is not None


def test_braintree_bare_xml_sample_with_no_verify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bundled notification as bare XML (what the samples folder holds) needs no signature."""
    monkeypatch.setenv("RECOVERKIT_LOAD_PLUGINS", "braintree")
    monkeypatch.setenv("RECOVERKIT_BRAINTREE_API_BASE_URL", "http://127.0.0.1:9")
    assert _run("samples", "braintree", "--out", str(tmp_path))[0] == 0
    from importlib.resources import files

    xml = files("recoverkit_braintree") / "samples" / "subscription_charged_unsuccessfully.xml"
    bare = tmp_path / "notification.xml"
    bare.write_bytes(xml.read_bytes())
    facts = str(tmp_path / "braintree" / "facts.json")
    code, out, err = _run("translate", "braintree", str(bare), "--no-verify", "--facts", facts)
    assert code == 0, err
    assert json.loads(out)["body"]["transactions"][0]["psp"] == "braintree"
