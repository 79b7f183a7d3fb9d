"""Hypothesis strategies for Meta-shaped webhook bodies, hostile in the ways an outside fuzzing
run was: NUL and lone surrogates, values longer than their columns, huge numbers, wrong types.

``deliveries()`` draws a body together with what it must lead to: which messages and statuses
are well formed (they must be stored) and which are broken (each must be recorded with its
reason), so a test can check both halves of the promise.

How many examples a test runs comes from the environment (``FUZZ_EXAMPLES``): a few hundred by
default, to keep the suite fast on two cores; the issue's bench size is
``FUZZ_EXAMPLES=10000`` (see tests/integrations/test_webhook_fuzz.py).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from integrations.whatsapp import payloads as wa

settings.register_profile(
    "porfin",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")),
    deadline=None,  # database round trips vary with the machine's load
    database=None,  # no .hypothesis folder in the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,  # a failure prints the line that replays it
)
FUZZ = settings.get_profile("porfin")

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
PNID = "1122334455667"


def storable(text: str, limit: int | None = None) -> str:
    """What the parser promises to hand on for ``text``: NUL and lone surrogates replaced by
    U+FFFD, clamped to ``limit``."""
    text = UNSTORABLE.sub("\ufffd", text)
    return text[:limit] if limit is not None else text


def is_storable(text: str) -> bool:
    return UNSTORABLE.search(text) is None


# --- Values -------------------------------------------------------------------------------------

NASTY = st.sampled_from(["\x00", "\ud83d", "\udc00", "\udfff", "é", "😀", "\u200b", '"', "\\", "ß"])
short_text = st.text(
    alphabet=st.one_of(st.characters(codec="utf-8", max_codepoint=0x3FF), NASTY), max_size=20
)
long_text = st.builds(
    lambda piece, count: piece * count,
    st.sampled_from(["x", "é", "😀", "\x00", "ab"]),
    st.integers(0, 400),
)
any_text = st.one_of(short_text, long_text)
big_int = st.integers(min_value=-(2**80), max_value=2**80)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    big_int,
    st.floats(allow_nan=False, allow_infinity=False),
    any_text,
)
junk = st.recursive(
    scalar,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(short_text, children, max_size=3)
    ),
    max_leaves=6,
)
not_a_string = st.one_of(
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(scalar, max_size=2),
    st.dictionaries(short_text, scalar, max_size=2),
)
wa_id = st.one_of(
    st.integers(10**7, 10**15).map(str),
    st.integers(10**33, 10**60).map(str),  # longer than Contact.wa_id
    short_text.filter(lambda text: text.strip() != ""),
)
unix_seconds = st.integers(min_value=0, max_value=2**31 - 1)
timestamp = st.one_of(unix_seconds.map(str), unix_seconds)
extra_keys = st.dictionaries(st.sampled_from(["x_note", "x_origin", "x_z"]), junk, max_size=2)


# --- Messages -----------------------------------------------------------------------------------


def _contact_cards():
    name = st.one_of(
        st.fixed_dictionaries({"formatted_name": any_text}, optional={"first_name": any_text}),
        junk,  # not an object: the card is kept, only its name is not read
    )
    return st.lists(st.fixed_dictionaries({"name": name}, optional={"phones": junk}), max_size=3)


CONTENTS = {
    "text": st.fixed_dictionaries({"body": any_text}),
    "location": st.fixed_dictionaries(
        {
            "latitude": st.floats(-90, 90),
            "longitude": st.floats(-180, 180),
        },
        optional={"name": any_text, "address": junk},
    ),
    "contacts": _contact_cards(),
    "interactive": st.fixed_dictionaries(
        {
            "type": st.just("button_reply"),
            "button_reply": st.fixed_dictionaries({"id": any_text, "title": any_text}),
        }
    ),
    "button": st.fixed_dictionaries({"payload": any_text, "text": any_text}),
    "order": st.fixed_dictionaries(
        {"catalog_id": any_text, "product_items": st.lists(junk, max_size=3)}
    ),
    "unsupported": st.dictionaries(short_text, junk, max_size=3),
}
# Types the parser reads but that change another message instead of adding one.
CHANGES = {
    "reaction": st.fixed_dictionaries({"message_id": any_text, "emoji": any_text}),
    "revoke": st.fixed_dictionaries({"original_message_id": any_text.filter(bool)}),
    "edit": st.fixed_dictionaries(
        {
            "original_message_id": any_text.filter(bool),
            "message": st.fixed_dictionaries(
                {"type": st.just("text"), "text": st.fixed_dictionaries({"body": any_text})}
            ),
        }
    ),
    "image": st.fixed_dictionaries(
        {"id": st.one_of(any_text, big_int), "mime_type": any_text, "sha256": any_text},
        optional={"caption": any_text, "filename": any_text},
    ),
}

# Ways to break a message so that the parser must refuse it (and say where).
BREAKS = {
    "no id": lambda m, v: m.pop("id"),
    "id not a string": lambda m, v: m.update(id=v),
    "no timestamp": lambda m, v: m.pop("timestamp"),
    "timestamp not seconds": lambda m, v: m.update(timestamp="soon"),
    "no type": lambda m, v: m.pop("type"),
    "no sender": lambda m, v: m.pop("from"),
    "content not an object": lambda m, v: m.update({m["type"]: "hi"}),
    "error code not a number": lambda m, v: m.update(errors=[{"code": "x"}]),
    "context not an object": lambda m, v: m.update(context="wamid.x"),
    "content nested too deeply": lambda m, v: m.update({m["type"]: _nested(wa.MAX_DEPTH + 1)}),
}


def _nested(depth: int) -> dict:
    node: dict = {}
    for _ in range(depth):
        node = {"body": "", "next": node}
    return node


@dataclass
class Expected:
    """What processing a drawn body must lead to."""

    stored: dict[str, dict] = field(default_factory=dict)  # stored wamid -> the message drawn
    statuses: dict[str, str] = field(default_factory=dict)  # stored wamid -> stored status
    rejected: list[str] = field(default_factory=list)  # where each broken item sits
    malformed: str = ""  # the whole body is refused, with this in its error


@st.composite
def inbound_message(draw, index: int, *, changes: bool = False) -> dict:
    """A well-formed message: every field may still be odd (long, NUL, surrogates, numbers)."""
    types = {**CONTENTS, **(CHANGES if changes else {})}
    message_type = draw(st.sampled_from(sorted(types)))
    message = {
        "from": draw(wa_id),
        "id": f"wamid.{index}." + draw(any_text),
        "timestamp": draw(timestamp),
        "type": message_type,
        message_type: draw(types[message_type]),
    }
    if draw(st.booleans()):
        message["context"] = draw(
            st.fixed_dictionaries({}, optional={"id": junk, "from": junk, "forwarded": junk})
        )
    if draw(st.booleans()):
        message["referral"] = draw(st.dictionaries(short_text, junk, max_size=3))
    message.update(draw(extra_keys))
    return message


def contact_for(message: dict, draw) -> dict:
    contact = {"wa_id": message["from"]}
    profile = draw(
        st.one_of(
            st.fixed_dictionaries({"name": st.one_of(any_text, big_int)}),
            st.just({}),
            junk,  # not an object: the profile name is simply not read
        )
    )
    contact["profile"] = profile
    return contact


@st.composite
def status(draw, index: int) -> dict:
    item = {
        "id": f"wamid.status.{index}." + draw(any_text),
        "status": draw(
            st.one_of(st.sampled_from(["sent", "delivered", "read"]), any_text.filter(bool))
        ),
        "timestamp": draw(timestamp),
        "recipient_id": draw(st.one_of(wa_id, big_int)),
    }
    if draw(st.booleans()):
        item["errors"] = [
            draw(
                st.fixed_dictionaries(
                    {"code": big_int, "title": any_text},
                    optional={"message": junk, "error_data": junk, "href": junk},
                )
            )
        ]
    return item


@st.composite
def bodies(draw, phone_number_id: str = PNID) -> tuple[dict, Expected]:
    """A Meta-shaped body for ``phone_number_id``: a few messages and statuses, some broken."""
    expected = Expected()
    messages, contacts, statuses = [], [], []
    where = "entry[0].changes[0].value"
    for index in range(draw(st.integers(0, 4))):
        message = draw(inbound_message(index))
        contacts.append(contact_for(message, draw))
        if draw(st.integers(0, 3)) == 0:
            name = draw(st.sampled_from(sorted(BREAKS)))
            BREAKS[name](message, draw(not_a_string))
            expected.rejected.append(f"{where}.messages[{index}]")
        else:
            expected.stored[storable(message["id"], wa.WAMID_MAX)] = message
        messages.append(message)
    for index in range(draw(st.integers(0 if messages else 1, 3))):
        item = draw(status(index))
        if draw(st.integers(0, 3)) == 0:
            item.pop(draw(st.sampled_from(["id", "status", "timestamp"])))
            expected.rejected.append(f"{where}.statuses[{index}]")
        else:
            expected.statuses[storable(item["id"], wa.WAMID_MAX)] = storable(
                item["status"], wa.STATUS_MAX
            )
        statuses.append(item)
    change = wa.build_messages_change(
        phone_number_id=phone_number_id,
        display_phone_number="551140000000",
        contacts=contacts,
        messages=messages,
        statuses=statuses,
    )
    return wa.build_webhook("1000", [change]), expected


@st.composite
def deliveries(draw, phone_number_id: str = PNID) -> tuple[bytes, Expected]:
    """``bodies()`` as the bytes of a delivery, sometimes refused as a whole (NaN, nested
    deeper than any decoder goes, cut short)."""
    body, expected = draw(bodies(phone_number_id))
    # Meta escapes non-ASCII; raw UTF-8 (with surrogates as their raw bytes) must work too.
    if draw(st.booleans()):
        raw = json.dumps(body).encode("ascii")
    else:
        raw = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    whole = draw(st.sampled_from(["as is"] * 8 + ["NaN", "deep", "cut"]))
    if whole == "as is":
        return raw, expected
    if whole == "NaN":
        raw = raw.replace(b'"whatsapp_business_account"', b'"whatsapp_business_account","n":NaN')
        return raw, Expected(malformed="not valid JSON: NaN")
    if whole == "deep":  # deeper than the decoder goes, at any stack depth
        depth = draw(st.integers(20_000, 50_000))
        raw = raw[:-1] + b',"x":' + b"[" * depth + b"]" * depth + b"}"
        return raw, Expected(malformed="Malformed JSON: nested too deeply")
    return raw[: draw(st.integers(0, len(raw) - 1))], Expected(malformed="Malformed JSON")


@st.composite
def damaged_bodies(draw) -> dict:
    """``bodies()`` with a few values anywhere swapped for junk or deleted: shapes nobody
    planned for, which the parser must read or refuse with a reason."""
    body, _expected = draw(bodies())
    for _ in range(draw(st.integers(1, 4))):
        containers = _containers(body, [])
        target = containers[draw(st.integers(0, len(containers) - 1))]
        if isinstance(target, dict) and target:
            key = draw(st.sampled_from(sorted(target)))
            if draw(st.booleans()):
                del target[key]
            else:
                target[key] = draw(junk)
        elif isinstance(target, list) and target:
            target[draw(st.integers(0, len(target) - 1))] = draw(junk)
    return body


def _containers(node, found: list) -> list:
    if isinstance(node, dict | list):
        found.append(node)
        for child in node.values() if isinstance(node, dict) else node:
            _containers(child, found)
    return found
