"""`redact`: personal data and secrets replaced in every turn (and in the columns a turn was
joined from, so no writer brings them back), or the rows holding them set aside."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from recipe.algorithms.pii import Redactor, masked
from recipe.api import load
from recipe.diagnostics import RecipeError

from conftest import write_jsonl

SECRET = "AKIA" + "Q3EGRIAMKYN5BX2P"  # AWS's shape; split so scanners do not flag this file
TOKEN = "ghp_" + "x7" * 18


@pytest.mark.parametrize("text, kinds", [
    ("write to jane.doe@gmail.com today", ["email"]),
    ("mail a.b+c@mail.co.uk.", ["email"]),
    ("ping 8.8.8.8 and 1.1.1.1", ["ip", "ip"]),
    ("the host 2607:f8b0:4005:80a::200e answered", ["ip"]),
    (f"export AWS_KEY={SECRET}", ["key"]),
    (f"token: {TOKEN}", ["key"]),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----", ["key"]),
    ("call +44 20 7946 0958 or (415) 555-2671", ["phone", "phone"]),
    ("card 4111-1111-1111-1111 please", ["credit_card"]),
])
def test_each_kind_is_found(text, kinds):
    red = Redactor(("email", "ip", "key", "phone", "credit_card"))
    out, found = red.redact(text)
    assert [k for k, _ in found] == kinds
    for _, value in found:
        assert value not in out


@pytest.mark.parametrize("text", [
    "a regex for user@example.com or info@sub.example.org",    # reserved example domains
    "the router is 192.168.1.1, the loopback 127.0.0.1",       # private, not personal
    "version 999.1.1.1 and 01.2.3.4 are not addresses",        # invalid or leading zeros
    "std::vector, face::cafe, ::1 and a::b",                   # C++ names, loopback IPv6
    "at 12:30:45 in 2023, 12345678 items",                     # times, years, quantities
    "the number 1234 5678 9012 3456 fails Luhn",
    "seasons 2005-2008 2009 2010, stats 0 27 6 11 2 3 0 0 25 13 4 1 33 0",  # P3's wiki_bio: Luhn alone took them
    "sk-short and AKIA-not-a-key",
])
def test_what_is_not_personal_is_left_alone(text):
    assert Redactor(("email", "ip", "key", "phone", "credit_card")).redact(text) == (text, [])


def test_a_quoted_address_in_code_keeps_its_quotes():
    # Code Alpaca: `'you@gmail.com'` became `<EMAIL>'` while quotes counted as address characters
    assert Redactor().redact("send('you@gmail.com')")[0] == "send('<EMAIL>')"


def test_fake_values_are_reserved_for_examples_the_same_for_one_value_and_found_no_more():
    red = Redactor(("email", "ip", "phone"), replace="fake")
    text = "jane@gmail.com wrote to 8.8.8.8; jane@gmail.com called +1 415-555-2671"
    out, found = red.redact(text)
    assert len(found) == 4
    a, b = out.split(" wrote")[0], out.split("; ")[1].split(" called")[0]
    assert a == b and a.endswith(("@example.com", "@example.org"))
    assert Redactor(("email", "ip", "phone")).redact(out) == (out, [])


def test_a_masked_value_shows_too_little_to_use():
    assert masked("jane.doe@gmail.com") == "ja********om"
    assert masked(SECRET).startswith("AK") and SECRET[4:-2] not in masked(SECRET)


def run(tmp_path, body: str, rows, fmt="sharegpt"):
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    f = tmp_path / "r.recipe"
    f.write_text(f'recipe r\nsource raw = read("{data}", format="{fmt}")\n{body}')
    return load(str(f)).run(out=tmp_path / "out", cache_dir=tmp_path / "cache"), tmp_path / "out"


CHATS = [
    {"conversations": [{"from": "system", "value": "Contact ops@acme-corp.com for access."},
                       {"from": "human", "value": "My IP is 81.2.69.142, why am I blocked?"},
                       {"from": "gpt", "value": "Ask ops@acme-corp.com to allow 81.2.69.142."},
                       {"from": "human", "value": f"Here is my key {SECRET}"},
                       {"from": "gpt", "value": "Revoke it now."}]},
    {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]},
]


def test_every_turn_is_redacted_and_no_output_holds_the_values(tmp_path):
    res, out = run(tmp_path, 'x = raw | redact()\nwrite x to "x.jsonl"\nwrite x to "x.sharegpt.json" (format="sharegpt")\n'
                   'write x to "x.parquet"\n', CHATS)
    for p in out.iterdir():
        body = p.read_bytes()
        for value in (b"ops@acme-corp.com", b"81.2.69.142", SECRET.encode()):
            assert value not in body, (p.name, value)
    rows = [json.loads(x) for x in (out / "x.jsonl").read_text().splitlines()]
    turns = [m["content"] for m in rows[0]["messages"]]
    assert turns[0] == "Contact <EMAIL> for access." and turns[3] == "Here is my key <KEY>"
    assert rows[0]["instruction"] == turns[1] == "My IP is <IP_ADDRESS>, why am I blocked?"
    assert rows[0]["response"] == turns[2] and [r["redactions"] for r in rows] == [5, 0]
    step = res.manifest["nodes"][1]
    assert step["stats"]["found"] == {"email": 2, "ip": 2, "key": 1} and step["stats"]["rows changed"] == 1


def test_on_response_rewrites_that_turn_alone(tmp_path):
    _, out = run(tmp_path, 'x = raw | redact(on=response)\nwrite x to "x.jsonl"\n', CHATS)
    turns = [m["content"] for m in json.loads((out / "x.jsonl").read_text().splitlines()[0])["messages"]]
    assert turns[1] == CHATS[0]["conversations"][1]["value"]  # the instruction keeps its address
    assert turns[2] == "Ask <EMAIL> to allow <IP_ADDRESS>." and SECRET in turns[3]


def test_an_alpaca_input_is_redacted_where_the_writer_splits_it_back(tmp_path):
    rows = [{"instruction": "Forward this note.", "input": "From: jane@gmail.com", "output": "Done."}]
    _, out = run(tmp_path, 'x = raw | redact()\nwrite x to "x.json" (format="alpaca")\nwrite x to "c.jsonl"\n',
                 rows, fmt="alpaca")
    rec = json.loads((out / "x.json").read_text())[0]
    assert rec["instruction"] == "Forward this note." and rec["input"] == "From: <EMAIL>"
    assert b"jane@gmail.com" not in (out / "c.jsonl").read_bytes()


def test_drop_sets_aside_the_rows_that_hold_any_with_what_they_hold(tmp_path):
    res, out = run(tmp_path, 'x = raw | redact(drop=true, kinds=["email", "key"])\nwrite x to "x.jsonl"\n', CHATS)
    assert [json.loads(x)["_id"] for x in (out / "x.jsonl").read_text().splitlines()] == ["raw:1"]
    aside = [json.loads(x) for x in (out / "set_aside.jsonl").read_text().splitlines()]
    assert aside == [{"_id": "raw:0", "node": "x",
                      "reason": "redact: holds 2 e-mail addresses, 1 key (first: op********om)"}]
    assert "redactions" not in (out / "x.jsonl").read_text()


def test_a_text_column_of_its_own(tmp_path):
    rows = [{"instruction": "Summarise.", "output": "Ok.", "meta": "scraped from 81.2.69.142 by bob@corp.io"}]
    _, out = run(tmp_path, 'x = raw | redact(on=meta, kinds=["ip"])\nwrite x to "x.jsonl"\n', rows, fmt="alpaca")
    row = json.loads((out / "x.jsonl").read_text())
    assert row["meta"] == "scraped from <IP_ADDRESS> by bob@corp.io" and row["redactions"] == 1


@pytest.mark.parametrize("args, words", [
    ('kinds=["emails"]', "unknown kind `emails`"),
    ("kinds=[]", "names nothing to find"),
    ('replace="mask"', "must be one of tag, fake"),
])
def test_check_refuses_what_redact_cannot_do(tmp_path, args, words):
    data = write_jsonl(tmp_path / "d.jsonl", CHATS)
    f = tmp_path / "r.recipe"
    f.write_text(f'recipe r\nsource raw = read("{data}")\nx = raw | redact({args})\nwrite x to "x.jsonl"\n')
    with pytest.raises(RecipeError) as e:
        load(str(f)).check()
    assert words in e.value.diagnostics[0].message


def test_the_turns_kept_for_their_weights_are_redacted_too(tmp_path):
    """A ShareGPT row whose turns have a `weight` keeps its `conversations` for the writers; a
    canonical sink writes that column, and it held the original address until session 30."""
    rows = [{"conversations": [{"from": "human", "value": "mail jane@gmail.com", "weight": 0},
                               {"from": "gpt", "value": "Done, jane@gmail.com", "weight": 1}]}]
    _, out = run(tmp_path, 'x = raw | redact()\nwrite x to "x.jsonl"\nwrite x to "s.jsonl" (format="sharegpt")\n'
                 'write x to "x.parquet"\n', rows)
    for p in out.iterdir():
        assert b"jane@gmail.com" not in p.read_bytes(), p.name
    rec = json.loads((out / "s.jsonl").read_text())
    assert rec["conversations"] == [{"from": "human", "value": "mail <EMAIL>", "weight": 0},
                                    {"from": "gpt", "value": "Done, <EMAIL>", "weight": 1}]
