"""A manager builds a five-step flow on the canvas, publishes it, and a customer goes through
it from the sandbox phone: a button answer and a question captured on the contact."""

import time

import pytest

from accounts.models import Membership, Organization, Role, User
from flows.models import Flow, FlowRun
from inbox.models import Chat, Contact, Message
from integrations.models import WhatsAppNumber

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "a-long-passphrase-42"
PHONE = "5511955554444"


def wait_for(query, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = query.first()
        if found is not None:
            return found
        time.sleep(0.1)
    raise AssertionError(f"nothing matched {query.query} within {timeout}s")


def select_node(page, node_id):
    page.click(f".drawflow-node:has([data-node='{node_id}']) .fnode-head")
    page.wait_for_selector(f"[data-properties] p:has-text('{node_id}')")


def add_step(page, label, node_id, props, *, drag=False):
    item = page.locator(".flow-library-item", has_text=label)
    if drag:
        item.drag_to(page.locator("#flow-canvas"), target_position={"x": 500, "y": 320})
    else:
        item.click()
    page.wait_for_selector(f"[data-node='{node_id}']")
    page.wait_for_selector(f"[data-properties] p:has-text('{node_id}')")
    for name, value in props.items():
        field = page.locator(f"[data-properties] [name='{name}']")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
        field.dispatch_event("change")


def connect(page, source, port, target):
    select_node(page, source)
    page.select_option(f"[data-properties] select[data-port='{port}']", target)
    page.wait_for_function(
        "([s, p, t]) => window.porfinFlowEditor.definition().edges.some("
        "e => e.from === s && e.port === p && e.to === t)",
        arg=[source, port, target],
    )


def phone_sends(page, server, *, kind="text", text="", reply_id=""):
    page.goto(server.url + "/sandbox/phone/")
    page.fill("input[name=phone]", PHONE)
    page.fill("input[name=profile_name]", "Rita Cliente")
    page.select_option("select[name=type]", kind)
    page.fill("textarea[name=text]", text)
    if reply_id:
        page.fill("input[name=reply_id]", reply_id)
    page.click("form.card button[type=submit]")
    page.wait_for_selector(".message.success")


def test_build_publish_and_run_a_five_step_flow(live_asgi_server, browser):
    server = live_asgi_server
    org = Organization.objects.create(name="Clínica Fluxo", slug="clinica-fluxo", language="en")
    WhatsAppNumber.objects.create(
        organization=org,
        name="Recepção",
        display_phone_number="+55 11 4000-0000",
        phone_number_id="7301",
        waba_id="97301",
        access_token="token-fluxo",
        app_secret="secret-fluxo",
        provider=WhatsAppNumber.Provider.SANDBOX,
    )
    user = User.objects.create_user(email="mara@fluxo.test", password=PASSWORD, name="Mara")
    Membership.objects.create(user=user, organization=org, role=Role.ADMIN)

    page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="en-US")
    page.goto(server.url + "/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(server.url + "/")

    page.goto(server.url + "/flows/")
    page.fill("#flow-name", "Agendamento")
    page.click("form:has(#flow-name) button[type=submit]")
    page.wait_for_selector("#flow-canvas [data-node='start']")

    select_node(page, "start")
    page.fill("[data-properties] [name='keywords']", "menu")
    page.locator("[data-properties] [name='keywords']").dispatch_event("change")
    add_step(
        page,
        "Send message",
        "message1",
        {"label": "Welcome", "text": "Olá {{contact.first_name}}!"},
        drag=True,
    )
    add_step(
        page,
        "Reply buttons",
        "buttons1",
        {"label": "Menu", "text": "O que deseja?", "options": "Limpeza\nClareamento"},
    )
    add_step(
        page,
        "Question",
        "question1",
        {
            "label": "Email",
            "text": "Qual o seu email?",
            "kind": "email",
            "save_to": "contact.email_contato",
        },
    )
    add_step(
        page, "Send message", "message2", {"text": "Obrigado! Anotamos {{contact.email_contato}}."}
    )
    connect(page, "start", "next", "message1")
    connect(page, "message1", "next", "buttons1")
    connect(page, "buttons1", "opt1", "question1")
    connect(page, "buttons1", "opt2", "question1")
    connect(page, "question1", "next", "message2")
    assert page.locator(".drawflow .connection").count() == 5
    page.click("[data-action=layout]")

    page.click("[data-action=publish]")
    page.wait_for_selector("[data-status]:has-text('Version 1 of Agendamento is live')")
    flow = Flow.objects.get(organization=org)
    assert flow.published.number == 1 and len(flow.published.definition["nodes"]) == 5

    # The customer, on the sandbox phone.
    phone_sends(page, server, text="menu")
    menu = wait_for(
        Message.objects.filter(chat__organization=org, type="interactive", direction="out")
    )
    assert menu.text == "O que deseja?"
    assert Message.objects.filter(chat=menu.chat, text="Olá Rita!").exists()
    button = menu.content["interactive"]["action"]["buttons"][0]["reply"]
    phone_sends(page, server, kind="button_reply", text=button["title"], reply_id=button["id"])
    wait_for(Message.objects.filter(chat=menu.chat, text="Qual o seu email?", direction="out"))
    phone_sends(page, server, text="rita@example.com")
    wait_for(
        Message.objects.filter(
            chat=menu.chat, text="Obrigado! Anotamos rita@example.com.", direction="out"
        )
    )
    assert Contact.objects.get(wa_id=PHONE).attributes["email_contato"] == "rita@example.com"
    assert FlowRun.objects.get(chat=menu.chat).status == FlowRun.Status.COMPLETED

    # The team sees the captured attribute on the contact and the run log in the thread.
    chat = Chat.objects.get(pk=menu.chat_id)
    page.goto(server.url + f"/inbox/{chat.code}/")
    panel = page.wait_for_selector("#contact-panel")
    assert "email_contato" in panel.inner_text() and "rita@example.com" in panel.inner_text()
    page.wait_for_selector("#thread :text('Flow Agendamento: step Menu → chose Limpeza')")
    page.close()
