# ruff: noqa: E501 - XML fragments and cassette notes stay on one line, as they read in the files
"""Write the hand-authored Braintree cassettes and the demo's bundled API answers.

The XML below is written by hand from Braintree's XML API reference and the braintree SDK's own
XML shapes (4.48: util/parser.py, webhook_testing_gateway.py, its tests); nothing here was
recorded from Braintree. Run it after changing a shape:
``.venv/bin/python plugins/recoverkit-braintree/tests/write_cassettes.py``.
"""

import pathlib

import yaml

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE.parents[2] / "cassettes" / "braintree"
BASE = "http://braintree.emulator.test:3000/merchants/test_merchant"
HEADER = (
    "# Hand-written from Braintree's XML API reference and the braintree SDK's own XML shapes\n"
    "# (braintree 4.48: util/parser.py, webhook_testing_gateway.py, tests); NOT recorded from\n"
    '# Braintree. Replayed with record_mode="none"; no Authorization header is stored.\n'
    "# Written by plugins/recoverkit-braintree/tests/write_cassettes.py: edit that, then rerun it.\n"
)


def card(
    token="pm_card_demo_1", card_type="Visa", bin_="411111", last4="1111", debit="No", prepaid="No"
):
    return f"""<credit-card>
  <token>{token}</token>
  <bin>{bin_}</bin>
  <last-4>{last4}</last-4>
  <card-type>{card_type}</card-type>
  <expiration-month>12</expiration-month>
  <expiration-year>2027</expiration-year>
  <debit>{debit}</debit>
  <prepaid>{prepaid}</prepaid>
  <country-of-issuance>USA</country-of-issuance>
  <customer-location>US</customer-location>
</credit-card>"""


def txn(
    id,
    status,
    created,
    *,
    code=None,
    text=None,
    rtype=None,
    additional=None,
    network=None,
    mac=None,
    gw=None,
    sub="sub_demo_1",
    period="2026-11-30",
    amount="49.99",
    crd=None,
    order=None,
    currency="USD",
    extra="",
):
    def opt(tag, v):
        return f"<{tag}>{v}</{tag}>" if v is not None else f'<{tag} nil="true"/>'

    subx = (
        f"<subscription-id>{sub}</subscription-id>\n<plan-id>plan_monthly</plan-id>\n"
        f'<subscription>\n  <billing-period-start-date type="date">{period}</billing-period-start-date>\n'
        f'  <billing-period-end-date type="date">2026-12-29</billing-period-end-date>\n</subscription>'
        if sub
        else '<subscription-id nil="true"/>'
    )
    return f"""<transaction>
<id>{id}</id>
<status>{status}</status>
<type>sale</type>
<currency-iso-code>{currency}</currency-iso-code>
<amount>{amount}</amount>
<merchant-account-id>acme_usd</merchant-account-id>
{opt("order-id", order)}
<created-at type="datetime">{created}</created-at>
<updated-at type="datetime">{created}</updated-at>
<customer>
  <id>cust_demo_1</id>
</customer>
{crd if crd is not None else card()}
{opt("processor-response-code", code)}
{opt("processor-response-text", text)}
{opt("processor-response-type", rtype)}
{opt("additional-processor-response", additional)}
{opt("network-response-code", network)}
{opt("merchant-advice-code", mac)}
{opt("gateway-rejection-reason", gw)}
<network-transaction-id>020170912123456</network-transaction-id>
{subx}
<recurring type="boolean">true</recurring>
<payment-instrument-type>credit_card</payment-instrument-type>
<refund-ids type="array"/>
{extra}
</transaction>"""


DECLINED = txn(
    "txn_declined_1",
    "processor_declined",
    "2026-11-30T11:59:58Z",
    code="2001",
    text="Insufficient Funds",
    rtype="soft_declined",
    additional="51 : INSUFFICIENT FUNDS",
    network="51",
)
SETTLED = txn(
    "txn_settled_1",
    "submitted_for_settlement",
    "2026-12-02T09:00:00Z",
    code="1000",
    text="Approved",
    rtype="approved",
    network="00",
)
HARD = txn(
    "txn_hard_1",
    "processor_declined",
    "2026-11-30T11:59:58Z",
    code="2004",
    text="Expired Card",
    rtype="hard_declined",
    network="54",
    mac="01",
    crd=card(card_type="MasterCard", bin_="555555", last4="4444"),
)
GWREJ = txn(
    "txn_gw_1", "gateway_rejected", "2026-11-30T11:59:58Z", gw="excessive_retry", rtype=None
)


def sub(status, balance, txns, created="2026-01-30T10:00:00Z"):
    body = "\n".join(txns)
    return f"""<subscription>
<id>sub_demo_1</id>
<status>{status}</status>
<balance>{balance}</balance>
<price>49.99</price>
<plan-id>plan_monthly</plan-id>
<payment-method-token>pm_card_demo_1</payment-method-token>
<created-at type="datetime">{created}</created-at>
<first-billing-date type="date">2026-01-30</first-billing-date>
<billing-period-start-date type="date">2026-11-30</billing-period-start-date>
<failure-count type="integer">{1 if status == "Past Due" else 0}</failure-count>
<days-past-due type="integer">0</days-past-due>
<transactions type="array">
{body}
</transactions>
<add-ons type="array"/>
<discounts type="array"/>
</subscription>"""


def api_error(message, transaction=None, code=None):
    errors = (
        f'<errors><errors type="array"/><transaction><errors type="array"><error><code>{code}</code>'
        f"<attribute>base</attribute><message>{message}</message></error></errors></transaction></errors>"
        if code
        else '<errors><errors type="array"/></errors>'
    )
    return f"""<api-error-response>
{errors}
<message>{message}</message>
{transaction or ""}
</api-error-response>"""


def inter(method, path, body, status=200, base=BASE, ctype="application/xml; charset=utf-8"):
    return {
        "request": {"body": None, "headers": {}, "method": method, "uri": base + path},
        "response": {
            "body": {
                "string": '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
                if ctype.startswith("application/xml")
                else body
            },
            "headers": {"Content-Type": [ctype]},
            "status": {"code": status, "message": "OK" if status == 200 else "Error"},
        },
    }


class Lit(str):
    pass


def lit(d, node):
    return d.represent_scalar("tag:yaml.org,2002:str", node, style="|")


yaml.add_representer(Lit, lit)


def fix(o):
    if isinstance(o, dict):
        return {k: fix(v) for k, v in o.items()}
    if isinstance(o, list):
        return [fix(v) for v in o]
    if isinstance(o, str) and "\n" in o:
        return Lit(o)
    return o


def write(name, interactions, note=""):
    text = (
        HEADER
        + (f"# {note}\n" if note else "")
        + yaml.dump(fix({"interactions": interactions, "version": 1}), sort_keys=False, width=200)
    )
    (OUT / f"{name}.yaml").write_text(text)


T = "/transactions/"
S = "/subscriptions/"
PASTDUE = sub("Past Due", "49.99", [DECLINED])
RECOVERED = sub("Active", "0.00", [SETTLED, DECLINED])

write(
    "translate_charged_unsuccessfully",
    [inter("GET", T + "txn_declined_1", DECLINED), inter("GET", S + "sub_demo_1", PASTDUE)],
    "A failed renewal: transaction.find then subscription.find.",
)
write(
    "translate_out_of_order",
    [inter("GET", T + "txn_declined_1", DECLINED), inter("GET", S + "sub_demo_1", RECOVERED)],
    "The failed-charge webhook arrives after the cycle was paid: the subscription now lists the success.",
)
write(
    "translate_charged_successfully",
    [inter("GET", T + "txn_settled_1", SETTLED), inter("GET", S + "sub_demo_1", RECOVERED)],
)
write(
    "translate_went_past_due",
    [inter("GET", S + "sub_demo_1", PASTDUE), inter("GET", T + "txn_declined_1", DECLINED)],
)
HARDSUB = sub("Past Due", "49.99", [HARD]).replace(
    "pm_card_demo_1</payment", "pm_card_demo_1</payment"
)
write(
    "translate_hard_decline",
    [
        inter("GET", T + "txn_hard_1", HARD),
        inter("GET", S + "sub_demo_1", sub("Past Due", "49.99", [HARD])),
    ],
    "Mastercard expired card (2004) with merchant advice code 01.",
)
write(
    "translate_gateway_rejected",
    [
        inter("GET", T + "txn_gw_1", GWREJ),
        inter("GET", S + "sub_demo_1", sub("Past Due", "49.99", [GWREJ])),
    ],
    "Braintree's excessive_retry gateway rejection: never sent to the network.",
)
ACH = txn(
    "txn_ach_1",
    "settlement_declined",
    "2026-11-28T10:00:00Z",
    code="1000",
    text="Approved",
    rtype="approved",
    sub=None,
    order="order_991",
    amount="100.00",
    crd="",
    extra="<processor-settlement-response-code>4001</processor-settlement-response-code>\n<processor-settlement-response-text>Settlement Declined</processor-settlement-response-text>\n<us-bank-account><token>pm_ach_demo_1</token><last-4>1234</last-4><account-type>checking</account-type></us-bank-account>",
).replace("<payment-instrument-type>credit_card", "<payment-instrument-type>us_bank_account")
write(
    "translate_settlement_declined",
    [inter("GET", T + "txn_ach_1", ACH)],
    "An ACH sale declined at settlement (no subscription).",
)
ACH_RETURN = ACH.replace("<id>txn_ach_1</id>", "<id>txn_ach_2</id>").replace(
    "<processor-settlement-response-text>Settlement Declined</processor-settlement-response-text>",
    "<processor-settlement-response-text>Settlement Declined</processor-settlement-response-text>\n<ach-return-code>R02</ach-return-code>",
)
write(
    "translate_settlement_ach_return",
    [inter("GET", T + "txn_ach_2", ACH_RETURN)],
    "An ACH sale returned at settlement with NACHA return code R02 (account closed). The attribute name ach-return-code follows Braintree's transaction response reference (GraphQL achReturnCode); not recorded.",
)
write(
    "account_updater_report",
    [
        inter(
            "GET",
            "",
            "Payment Method Token,Customer ID,Update Type\npm_card_demo_1,cust_demo_1,expiration_date_updated\npm_card_demo_2,cust_demo_2,card_number_updated\n",
            base="https://reports.braintree.example/account_updater/2026-11-30.csv",
            ctype="text/csv",
        )
    ],
    "The report CSV's column layout is not published in our sources: these columns are the plugin's configurable defaults.",
)
CONF = [
    inter("GET", T + "txn_declined_1", DECLINED),
    inter("GET", S + "sub_demo_1", PASTDUE),
    inter("GET", T + "txn_settled_1", SETTLED),
    inter("GET", T + "txn_hard_1", HARD),
    inter("GET", T + "txn_gw_1", GWREJ),
    inter("GET", T + "txn_ach_1", ACH),
    inter("GET", T + "txn_ach_2", ACH_RETURN),
]
CONF.append(
    inter(
        "GET",
        "",
        "Payment Method Token,Customer ID,Update Type\npm_card_demo_1,cust_demo_1,expiration_date_updated\n",
        base="https://reports.braintree.example/account_updater/2026-11-30.csv",
        ctype="text/csv",
    )
)
write("conformance", CONF, "Served with allow_playback_repeats to the conformance kit's samples.")

write("retry_status_past_due", [inter("GET", S + "sub_demo_1", PASTDUE)])
write("retry_status_active", [inter("GET", S + "sub_demo_1", RECOVERED)])
RETRY_DECLINED = txn(
    "txn_retry_1",
    "processor_declined",
    "2026-12-03T10:00:00Z",
    code="2001",
    text="Insufficient Funds",
    rtype="soft_declined",
    network="51",
)
RETRY_OK = txn(
    "txn_retry_2",
    "submitted_for_settlement",
    "2026-12-03T10:00:00Z",
    code="1000",
    text="Approved",
    rtype="approved",
    network="00",
)
write(
    "retry_charge_declined",
    [
        inter("GET", S + "sub_demo_1", PASTDUE),
        inter("POST", "/transactions", api_error("Insufficient Funds", RETRY_DECLINED), status=422),
    ],
    "retry_charge declined: Braintree answers 422 with an api-error-response holding the transaction.",
)
write(
    "retry_charge_success",
    [inter("GET", S + "sub_demo_1", PASTDUE), inter("POST", "/transactions", RETRY_OK, status=201)],
)
write(
    "retry_charge_after_crash",
    [inter("GET", S + "sub_demo_1", sub("Past Due", "49.99", [RETRY_DECLINED, DECLINED]))],
    "After a crash: the claimed attempt is found in the subscription's transactions; no POST is recorded, so a second charge would fail the test.",
)
write("retry_charge_not_past_due", [inter("GET", S + "sub_demo_1", RECOVERED)])
write(
    "retry_charge_refused",
    [
        inter("GET", S + "sub_demo_1", PASTDUE),
        inter(
            "POST",
            "/transactions",
            api_error("Subscription status must be Past Due in order to retry.", code="91531"),
            status=422,
        ),
    ],
    "Braintree refuses retry_charge with validation error 91531 (subscription not Past Due by then).",
)
SALE_OK = txn(
    "txn_sale_1",
    "submitted_for_settlement",
    "2026-12-03T10:00:00Z",
    code="1000",
    text="Approved",
    rtype="approved",
    sub=None,
    order="inv_77",
    amount="20.00",
)
SALE_NO = txn(
    "txn_sale_2",
    "processor_declined",
    "2026-12-03T10:00:00Z",
    code="2015",
    text="Transaction Not Allowed",
    rtype="hard_declined",
    sub=None,
    order="inv_77",
    amount="20.00",
)
write("sale_success", [inter("POST", "/transactions", SALE_OK, status=201)])
write(
    "sale_declined",
    [inter("POST", "/transactions", api_error("Transaction Not Allowed", SALE_NO), status=422)],
)
CANCELED = sub("Canceled", "49.99", [DECLINED])
write(
    "end_dunning_cancel_twice",
    [
        inter("GET", S + "sub_demo_1", PASTDUE),
        inter("PUT", S + "sub_demo_1/cancel", CANCELED),
        inter("GET", S + "sub_demo_1", CANCELED),
    ],
    "First call cancels; the second finds it Canceled and does nothing.",
)
write(
    "reconcile",
    [inter("GET", T + "txn_retry_2", RETRY_OK), inter("GET", S + "sub_demo_1", RECOVERED)],
)
B1 = txn(
    "txn_b1",
    "settled",
    "2026-11-01T08:00:00Z",
    code="1000",
    text="Approved",
    rtype="approved",
    period="2026-10-30",
)
B2 = txn(
    "txn_b2",
    "processor_declined",
    "2026-11-01T09:00:00Z",
    code="2000",
    text="Do Not Honor",
    rtype="soft_declined",
    period="2026-10-30",
)
B3 = txn(
    "txn_b3",
    "settled",
    "2026-11-02T07:00:00Z",
    code="1000",
    text="Approved",
    rtype="approved",
    period="2026-10-30",
)


def ids(*i):
    return (
        '<search-results>\n<page-size type="integer">50</page-size>\n<ids type="array">'
        + "".join(f"<item>{x}</item>" for x in i)
        + "</ids>\n</search-results>"
    )


def coll(*t):
    return (
        '<credit-card-transactions type="collection">\n'
        + "\n".join(t)
        + "\n</credit-card-transactions>"
    )


write(
    "backfill_two_days",
    [
        inter("POST", T + "advanced_search_ids", ids("txn_b2", "txn_b1")),
        inter("POST", T + "advanced_search", coll(B2, B1)),
        inter("POST", T + "advanced_search_ids", ids("txn_b3")),
        inter("POST", T + "advanced_search", coll(B3)),
    ],
    "Two one-day windows of transaction search (ids, then the page of transactions).",
)
write(
    "backfill_resume",
    [
        inter("POST", T + "advanced_search_ids", ids("txn_b2", "txn_b1", "txn_b3")),
        inter("POST", T + "advanced_search", coll(B2, B1, B3)),
        inter("POST", T + "advanced_search_ids", ids()),
    ],
    "Resuming at 2026-11-01T08:00Z shifts the windows: the first holds all three, the second none.",
)

write(
    "conformance_end_dunning",
    [inter("GET", S + "sub_demo_1", PASTDUE), inter("PUT", S + "sub_demo_1/cancel", CANCELED)]
    + [inter("GET", S + "sub_demo_1", CANCELED) for _ in range(3)],
    "end_dunning twice with the kit's state() reads in between: GET, PUT, then three GETs that see Canceled.",
)

# --- API responses bundled with the samples for `recoverkit demo` (offline) ---
API = HERE.parent / "src" / "recoverkit_braintree" / "samples" / "api"
API.mkdir(exist_ok=True)
SETTLED2 = txn(
    "txn_settled_2",
    "submitted_for_settlement",
    "2026-11-15T09:00:00Z",
    code="1000",
    text="Approved",
    rtype="approved",
    network="00",
    sub="sub_demo_2",
    period="2026-11-15",
    crd=card(
        token="pm_card_demo_2", card_type="MasterCard", bin_="555555", last4="4444", debit="Yes"
    ),
)
SUB2 = (
    sub("Active", "0.00", [SETTLED2])
    .replace("<id>sub_demo_1</id>", "<id>sub_demo_2</id>", 1)
    .replace("pm_card_demo_1", "pm_card_demo_2")
)
NOTE = (
    "<!-- Hand-written from Braintree's XML API reference and the SDK's XML shapes; the API\n"
    "     response recoverkit demo serves offline for the bundled samples. Not recorded. -->\n"
)
for name, xml in {
    "transaction_txn_declined_1": DECLINED,
    "subscription_sub_demo_1": PASTDUE,
    "transaction_txn_settled_2": SETTLED2,
    "subscription_sub_demo_2": SUB2,
}.items():
    (API / f"{name}.xml").write_text(NOTE + xml + "\n")
write(
    "translate_charged_successfully",
    [inter("GET", T + "txn_settled_2", SETTLED2), inter("GET", S + "sub_demo_2", SUB2)],
)
CONF += [inter("GET", T + "txn_settled_2", SETTLED2), inter("GET", S + "sub_demo_2", SUB2)]
write("conformance", CONF, "Served with allow_playback_repeats to the conformance kit's samples.")
