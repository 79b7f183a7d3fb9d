"""The inbox on a phone (390×844): every part reachable, nothing clipped or covered. Checked
with bounding boxes, not by eye."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Role
from inbox.models import Chat, Contact, Message
from tests.browser.test_live_inbox import PASSWORD, make_org, member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = {"width": 390, "height": 844}


def overlaps(a, b) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def a_busy_chat(org, number):
    contact = Contact.objects.create(
        organization=org,
        wa_id="5511955554444",
        phone="+5511955554444",
        name="Juliana Martins de Albuquerque",
        tags=["vip"],
    )
    now = timezone.now()
    chat = Chat.objects.create(
        organization=org,
        contact=contact,
        number=number,
        last_message_at=now,
        window_expires_at=now + timedelta(hours=20),
        tags=["retorno"],
    )
    for day in (3, 2, 1, 0):
        for index in range(6):
            when = now - timedelta(days=day, minutes=60 - index * 5)
            inbound = index % 2 == 0
            fields = {
                "organization": org,
                "chat": chat,
                "number": number,
                "timestamp": when,
                "direction": Message.Direction.INBOUND if inbound else Message.Direction.OUTBOUND,
                "status": Message.Status.RECEIVED if inbound else Message.Status.READ,
                "author_type": Message.Author.CUSTOMER if inbound else Message.Author.USER,
            }
            if index == 3:
                Message.objects.create(
                    type=Message.Type.DOCUMENT,
                    text="",
                    content={
                        "type": "document",
                        "document": {
                            "link": "https://example.com/receita.pdf",
                            "filename": f"receita-dia-{day}.pdf",
                        },
                    },
                    **fields,
                )
            else:
                body = f"Mensagem {index} do dia {day}: quero confirmar o horário de amanhã cedo"
                Message.objects.create(
                    type=Message.Type.TEXT,
                    text=body,
                    content={"type": "text", "text": {"body": body}},
                    **fields,
                )
    return chat


def test_the_chat_on_a_phone_has_a_contact_drawer_and_nothing_covers_or_clips(
    live_asgi_server, browser
):
    org, number = make_org("Clínica Celular", "clinica-celular", "7101")
    operator = member(org, "op@celular.test", Role.OPERATOR, "Olga Operator")
    chat = a_busy_chat(org, number)
    base = live_asgi_server.url

    page = browser.new_page(viewport=PHONE, locale="en-US", has_touch=True, is_mobile=True)
    page.goto(base + "/accounts/login/")
    page.fill("input[name=login]", operator.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(base + "/")

    def no_horizontal_overflow():
        width = page.evaluate("document.documentElement.scrollWidth")
        # What sticks out (outside the header's and the tabs' own horizontal scrolling).
        wide = page.evaluate(
            "() => [...document.querySelectorAll('body *')]"
            ".filter(e => e.getBoundingClientRect().right > 391"
            " && !e.closest('.chat-actions, .composer-tabs'))"
            ".slice(0, 8).map(e => e.tagName + '.' + e.className)"
        )
        assert width <= PHONE["width"], f"page is {width}px wide: {wide}"

    # The chat list: the time beside each name stays inside its row.
    page.goto(base + "/inbox/?status=any")
    row = page.wait_for_selector(".chat-row")
    no_horizontal_overflow()
    time_box = row.query_selector("time").bounding_box()
    row_box = row.bounding_box()
    assert time_box["x"] + time_box["width"] <= row_box["x"] + row_box["width"]
    for select in page.query_selector_all(".chat-filters select"):
        box = select.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]

    # The chat: header, thread and a one-line composer fit the width.
    page.goto(f"{base}/inbox/{chat.code}/")
    page.wait_for_selector("#thread .msg-in")
    no_horizontal_overflow()
    text = page.locator("#composer-text").bounding_box()
    send = page.locator(".composer-form[data-composer-panel=reply] button[type=submit]")
    send = send.bounding_box()
    assert abs((text["y"] + text["height"] / 2) - (send["y"] + send["height"] / 2)) < 24
    assert send["x"] + send["width"] <= PHONE["width"]
    window = page.locator("#chat-header .window-chip")
    assert window.is_visible() and "Window open until" in window.inner_text()

    # Day headings never sit over a message, wherever the thread is scrolled.
    thread = page.locator("#thread")
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        thread.evaluate(
            "(el, f) => { el.scrollTop = (el.scrollHeight - el.clientHeight) * f; }", fraction
        )
        page.wait_for_timeout(50)
        days = [b for b in page.locator("#thread .msg-day time").all() if b.is_visible()]
        bubbles = page.locator("#thread .msg-bubble").all()
        for day in days:
            day_box = day.bounding_box()
            for bubble in bubbles:
                bubble_box = bubble.bounding_box()
                if bubble_box:
                    assert not overlaps(day_box, bubble_box), "a day heading covers a message"

    # The contact drawer: hidden at first, then fully on screen with tags, window and the form.
    panel = page.locator("#contact-panel")
    assert not panel.is_visible()
    page.click("[data-drawer-toggle]")
    page.wait_for_function(
        "() => { const r = document.querySelector('#contact-panel').getBoundingClientRect();"
        " return r.left >= 0 && r.right <= innerWidth + 0.5; }"
    )
    box = panel.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5
    assert box["height"] >= PHONE["height"] - 60
    assert panel.locator("text=Service window").is_visible()
    tags = panel.locator("input[name=tags]")
    tags.scroll_into_view_if_needed()
    assert tags.is_visible() and "vip" in tags.input_value()
    panel.locator("input[name=name]").fill("Juliana Martins")
    panel.locator("button:has-text('Save contact')").click()
    page.wait_for_function(
        "() => document.querySelector('#contact-panel h2')?.textContent.trim() === "
        "'Juliana Martins'"
    )
    assert Contact.objects.get(pk=chat.contact_id).name == "Juliana Martins"
    # Still open after the save; Escape closes it.
    assert page.locator("#contact-panel").is_visible()
    page.keyboard.press("Escape")
    page.wait_for_selector("#contact-panel", state="hidden")
    no_horizontal_overflow()
    page.close()
