"""A WhatsApp Web number from nothing to a conversation, in a real browser against a real
server whose embedded Evolution emulator pairs, receives and sends like Evolution API."""

import pytest

from accounts.models import Membership, Organization, Role, User
from inbox.models import Message
from integrations.models import WhatsAppNumber
from tests.browser.test_live_inbox import PASSWORD, sign_in, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_add_pair_receive_and_reply_on_a_whatsapp_web_number(live_asgi_server, browser):
    server = live_asgi_server
    org = Organization.objects.create(name="Clínica Web", slug="clinica-web", language="en")
    owner = User.objects.create_user(email="owner@web.test", password=PASSWORD, name="Wanda")
    Membership.objects.create(user=owner, organization=org, role=Role.ADMIN)
    page = sign_in(browser, server, owner)

    # Settings › Numbers › Connect WhatsApp Web: a name, then the QR code.
    page.goto(server.url + "/settings/numbers/")
    page.click("text=Connect WhatsApp Web (QR)")
    page.fill("input[name=name]", "Recepção Web")
    page.click("form button[type=submit]:has-text('QR')")
    page.wait_for_selector("#web-state[data-state=connecting] img.web-qr")
    assert page.get_attribute("img.web-qr", "src").startswith("data:image/svg+xml;base64,")
    number = WhatsAppNumber.objects.get(organization=org, provider="evolution")
    connect_url = page.url

    # The phone "scans" it on the sandbox phone page (another tab).
    phone = browser.new_page(viewport={"width": 900, "height": 900}, locale="en-US")
    phone.context.add_cookies(page.context.cookies())
    phone.goto(server.url + "/sandbox/phone/")
    phone.click(f"[data-number='{number.code}'] button:has-text('Pair')")
    phone.wait_for_selector(f"[data-number='{number.code}'] .badge.success")

    # The connect page turns green by itself.
    page.wait_for_selector(
        "#web-state[data-state=open] .badge:has-text('Connected')", timeout=15000
    )
    assert page.url == connect_url

    # A customer writes from the emulated phone; the message reaches the inbox.
    card = phone.locator(f"[data-number='{number.code}']")
    card.locator("input[name=phone]").fill("5511977770000")
    card.locator("input[name=name]").fill("Rui Cliente")
    card.locator("textarea[name=text]").fill("Oi! Atendem por WhatsApp Web?")
    card.locator("button:has-text('Send as customer')").click()
    phone.wait_for_selector("#web-phone .message.success")
    wait_for(Message.objects.filter(number=number, text="Oi! Atendem por WhatsApp Web?"))

    page.goto(server.url + "/inbox/?status=any")
    page.wait_for_selector("#live-status[data-state=open]", timeout=10000)
    page.click(".chat-row:has-text('Rui Cliente')")
    page.wait_for_selector("#thread .msg-in:has-text('Atendem por WhatsApp Web?')")
    assert page.locator("#composer").inner_text().count("24") == 0  # no 24-hour window talk
    page.fill("#composer-text", "Sim! Como posso ajudar?")
    page.keyboard.press("Enter")
    page.wait_for_selector("#thread .msg-out:has-text('Como posso ajudar?')")
    wait_for(
        Message.objects.filter(number=number, text="Sim! Como posso ajudar?", wamid__isnull=False)
    )

    # The reply reaches the emulated phone.
    phone.goto(server.url + "/sandbox/phone/")
    phone.wait_for_selector(
        f"[data-number='{number.code}'] .web-phone-inbox li:has-text('Como posso ajudar?')"
    )
