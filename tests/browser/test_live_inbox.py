"""The live inbox in a real browser against a real server, with the server's own sandbox."""

import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from accounts.models import Membership, Organization, Role, User
from assistants.models import Assistant
from inbox import services as inbox_services
from inbox.models import Chat, Contact
from integrations import services as channel
from integrations.models import MessageTemplate, WhatsAppNumber
from integrations.whatsapp import payloads
from tests.servers import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "a-long-passphrase-42"


def make_org(name, slug, pnid):
    org = Organization.objects.create(name=name, slug=slug, language="en")
    number = WhatsAppNumber.objects.create(
        organization=org,
        name=f"{name} desk",
        display_phone_number="+55 11 4000-0000",
        phone_number_id=pnid,
        waba_id=f"9{pnid}",
        access_token=f"token-{slug}",
        app_secret=f"secret-{slug}",
        provider=WhatsAppNumber.Provider.SANDBOX,
    )
    return org, number


def member(org, email, role, name):
    user = User.objects.create_user(email=email, password=PASSWORD, name=name)
    Membership.objects.create(user=user, organization=org, role=role)
    return user


def customer_writes(server, number, text, wa_id="5511977776666", name="Rita Cliente"):
    with override_settings(SANDBOX_URL=server.sandbox_url, SANDBOX_WEBHOOK_BASE_URL=server.url):
        channel._registered_with_sandbox.clear()
        return channel.sandbox_customer_send(
            number=number, spec={"from": wa_id, "profile_name": name, "type": "text", "text": text}
        )


def wait_for(query, timeout=10):
    """The server processes webhooks in the background: poll the database for the result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = query.first()
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError(f"nothing matched {query.query} within {timeout}s")


def sign_in(browser, server, user):
    page = browser.new_page(viewport={"width": 1280, "height": 860}, locale="en-US")
    page.goto(server.url + "/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(server.url + "/")
    return page


def open_inbox(page, server):
    page.goto(server.url + "/inbox/?status=any")
    page.wait_for_selector("#live-status[data-state=open]", timeout=10000)


def test_an_inbound_message_appears_live_and_the_reply_ticks_go_to_read(live_asgi_server, browser):
    org, number = make_org("Clínica Live", "clinica-live", "7001")
    operator = member(org, "op@live.test", Role.OPERATOR, "Olga Operator")
    page = sign_in(browser, live_asgi_server, operator)
    open_inbox(page, live_asgi_server)

    customer_writes(live_asgi_server, number, "Oi, vocês abrem sábado?")
    row = page.wait_for_selector(".chat-row:has-text('Rita Cliente')", timeout=10000)
    assert "abrem sábado" in row.inner_text()

    row.click()
    page.wait_for_selector("#thread .msg-in:has-text('Oi, vocês abrem sábado?')")
    page.fill("#composer-text", "Sim, das 8h às 12h!")
    page.keyboard.press("Enter")
    page.wait_for_selector("#thread .msg-out:has-text('das 8h às 12h')")
    page.wait_for_selector(
        "#thread .msg-out:has-text('das 8h às 12h') .msg-status.is-read", timeout=15000
    )

    # The customer's next message arrives in the open chat without a reload.
    customer_writes(live_asgi_server, number, "Perfeito, obrigada!")
    page.wait_for_selector("#thread .msg-in:has-text('Perfeito, obrigada!')", timeout=10000)


def test_a_new_customer_appears_live_when_the_assistant_takes_the_chat_first(
    live_asgi_server, browser
):
    """The demo's setup: an assistant turns the AI on for every new chat, so the list hears
    "AI on" for a chat it does not show yet just before the chat's first message."""
    org, number = make_org("Clínica Nova", "clinica-nova", "7005")
    assistant = Assistant.objects.create(
        organization=org, name="Sofia", instructions="Answer kindly.", enable_for_new_chats=True
    )
    assistant.default_for_numbers.add(number)
    operator = member(org, "op@nova.test", Role.OPERATOR, "Olga Operator")
    page = sign_in(browser, live_asgi_server, operator)
    open_inbox(page, live_asgi_server)

    customer_writes(live_asgi_server, number, "Primeira vez aqui!", name="Nina Nova")
    row = page.wait_for_selector(".chat-row:has-text('Nina Nova')", timeout=10000)
    assert "Primeira vez aqui!" in row.inner_text()


def test_a_teammate_sees_the_assignment_change_live(live_asgi_server, browser):
    org, number = make_org("Clínica Team", "clinica-team", "7002")
    operator = member(org, "op@team.test", Role.OPERATOR, "Olga Operator")
    manager = member(org, "mgr@team.test", Role.MANAGER, "Mario Manager")
    agent = member(org, "agent@team.test", Role.AGENT, "Ana Agent")
    customer_writes(live_asgi_server, number, "Preciso remarcar")
    chat = wait_for(Chat.objects.filter(number=number))

    first = sign_in(browser, live_asgi_server, operator)
    second = sign_in(browser, live_asgi_server, manager)
    for page in (first, second):
        page.goto(f"{live_asgi_server.url}/inbox/{chat.code}/")
        page.wait_for_selector("#live-status[data-state=open]", timeout=10000)

    first.select_option("#assignee", str(agent.pk))
    second.wait_for_selector("#thread .msg-event:has-text('Ana Agent')", timeout=10000)
    # The header is re-rendered from the server right after the event.
    second.wait_for_function(
        "pk => document.querySelector('#assignee')?.value === pk", arg=str(agent.pk), timeout=10000
    )
    second.wait_for_selector(f"#chat-{chat.code} .avatar.sm[title='Ana Agent']", timeout=5000)


def test_outside_the_window_only_a_template_can_be_sent(live_asgi_server, browser):
    org, number = make_org("Clínica Window", "clinica-window", "7003")
    operator = member(org, "op@window.test", Role.OPERATOR, "Olga Operator")
    contact = Contact.objects.create(
        organization=org, wa_id="5511966665555", phone="+5511966665555", name="Beto"
    )
    chat = Chat.objects.create(
        organization=org,
        contact=contact,
        number=number,
        last_message_at=timezone.now() - timedelta(days=3),
        window_expires_at=timezone.now() - timedelta(days=2),
    )
    MessageTemplate.objects.create(
        organization=org,
        number=number,
        name="appointment_reminder",
        language="pt_BR",
        status="APPROVED",
        components=[
            {
                "type": "BODY",
                "text": "Olá {{1}}, lembramos da sua consulta com {{2}} em {{3}} às {{4}}.",
            }
        ],
    )
    page = sign_in(browser, live_asgi_server, operator)
    page.goto(f"{live_asgi_server.url}/inbox/{chat.code}/")
    assert page.locator("#composer-text").count() == 0
    assert "24 hours" in page.locator(".window-closed").inner_text()

    page.select_option("#template-select", label="appointment_reminder (pt_BR)")
    for index, value in enumerate(["Beto", "Dra. Ana", "12/05", "14:30"]):
        page.fill(f"#param-{index}", value)
    assert (
        "Olá Beto, lembramos da sua consulta com Dra. Ana"
        in page.locator(".template-preview").inner_text()
    )
    page.click(".template-form button[type=submit]")
    page.wait_for_selector("#thread .msg-out", timeout=10000)
    page.wait_for_selector(
        "#thread .msg-out .msg-status.is-delivered, #thread .msg-out .msg-status.is-read",
        timeout=15000,
    )


def test_a_script_message_renders_as_text_and_other_organizations_stay_private(
    live_asgi_server, browser
):
    org, number = make_org("Clínica A", "clinica-a", "7004")
    other_org, other_number = make_org("Clínica B", "clinica-b", "7005")
    agent = member(org, "agent@a.test", Role.OPERATOR, "Alice A")
    page = sign_in(browser, live_asgi_server, agent)
    open_inbox(page, live_asgi_server)

    customer_writes(live_asgi_server, number, "<script>window.pwned = 1</script><b>oi</b>")
    page.wait_for_selector(".chat-row:has-text('Rita Cliente')", timeout=10000).click()
    entry = page.wait_for_selector("#thread .msg-in")
    assert "<script>window.pwned = 1</script>" in entry.inner_text()
    assert page.evaluate("window.pwned") is None

    customer_writes(
        live_asgi_server,
        other_number,
        "segredo da clínica B",
        wa_id="5511911112222",
        name="Bruno B",
    )
    foreign_chat = str(wait_for(Chat.objects.filter(number=other_number)).code)
    page.wait_for_timeout(1500)  # B's events, had they been routed here, would have arrived
    events = page.evaluate("JSON.stringify(window.PorfinLive.recent)")
    assert foreign_chat not in events
    assert "segredo" not in events and "Bruno" not in events
    assert "Bruno B" not in page.content()


def test_after_a_server_restart_the_page_catches_up(transactional_db, browser):
    server = ServerProcess().start()
    try:
        org, number = make_org("Clínica Restart", "clinica-restart", "7006")
        operator = member(org, "op@restart.test", Role.OPERATOR, "Olga Operator")
        customer_writes(server, number, "Primeira mensagem")
        chat = wait_for(Chat.objects.filter(number=number))
        page = sign_in(browser, server, operator)
        page.goto(f"{server.url}/inbox/{chat.code}/")
        page.wait_for_selector("#live-status[data-state=open]", timeout=10000)

        server.stop()
        page.wait_for_selector("#live-status[data-state=closed]", timeout=10000)
        # Stored while no server could tell the browser (as a worker would, during the outage).
        inbound = payloads.parse_webhook(
            payloads.build_webhook(
                number.waba_id,
                [
                    payloads.build_messages_change(
                        phone_number_id=number.phone_number_id,
                        display_phone_number="551140000000",
                        contacts=[
                            payloads.build_contact(
                                wa_id="5511977776666", profile_name="Rita Cliente"
                            )
                        ],
                        messages=[
                            payloads.build_inbound_message(
                                wamid="wamid.offline-1",
                                from_wa_id="5511977776666",
                                message_type="text",
                                content=payloads.build_text("Enviada enquanto você estava offline"),
                            )
                        ],
                    )
                ],
            )
        )[0]
        inbox_services.message_receive(number=number, inbound=inbound)
        server = ServerProcess(port=server.port).start()
        page.wait_for_selector(
            "#thread .msg-in:has-text('enquanto você estava offline')", timeout=20000
        )
        assert page.locator("#thread .msg-in:has-text('Primeira mensagem')").count() == 1
    finally:
        server.stop()
