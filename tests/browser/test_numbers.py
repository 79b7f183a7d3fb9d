"""An owner connects a number in Settings › Numbers on a real server that was told no sandbox
address (it finds its own): the webhook URL is shown with a copy button, "Test webhook" turns
green, and a message from the sandbox phone arrives and shows as sent."""

import time

import pytest

from accounts.models import Membership, Organization, Role, User
from inbox.models import Message
from integrations.models import WhatsAppNumber
from tests.servers import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "a-long-passphrase-42"


@pytest.fixture
def server(transactional_db):
    process = ServerProcess(env={"SANDBOX_URL": "", "SANDBOX_WEBHOOK_BASE_URL": ""}).start()
    yield process
    process.stop()


def wait_for(query, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = query.first()
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError(f"nothing matched {query.query} within {timeout}s")


def test_an_owner_adds_a_sandbox_number_tests_its_webhook_and_receives_a_message(server, browser):
    org = Organization.objects.create(name="Clínica Nova", slug="clinica-nova", language="en")
    owner = User.objects.create_user(email="dona@nova.test", password=PASSWORD, name="Dona")
    Membership.objects.create(user=owner, organization=org, role=Role.ADMIN)

    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        locale="en-US",
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = context.new_page()
    page.goto(server.url + "/accounts/login/")
    page.fill("input[name=login]", owner.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(server.url + "/")

    page.goto(server.url + "/settings/numbers/")
    page.click("text=Add a number")
    page.check("input[name=provider][value=sandbox]")
    page.fill("input[name=name]", "Recepção teste")
    page.click("form button[type=submit]:has-text('Connect number')")
    page.wait_for_selector("#webhook-url")

    number = WhatsAppNumber.objects.get(organization=org)
    assert number.provider == "sandbox"
    url = page.inner_text("#webhook-url")
    assert url == f"{server.url}/webhooks/whatsapp/{number.webhook_key}/"
    assert page.inner_text("#verify-token") == number.verify_token
    copy = page.locator("button[data-copy='#webhook-url']")
    copy.click()
    page.wait_for_selector("button[data-copy='#webhook-url'][data-state=copied]")
    assert copy.inner_text() == "Copied"
    assert page.evaluate("navigator.clipboard.readText()") == url

    page.click("button:has-text('Test webhook')")
    result = page.wait_for_selector("#webhook-test-result")
    assert result.get_attribute("data-ok") == "true"
    assert "success" in result.get_attribute("class")
    assert "Webhook works." in result.inner_text()
    color = page.eval_on_selector("#webhook-test-result", "e => getComputedStyle(e).color")
    assert color != page.eval_on_selector("body", "e => getComputedStyle(e).color")

    page.goto(server.url + "/sandbox/phone/")
    page.fill("input[name=phone]", "5511977776666")
    page.fill("input[name=profile_name]", "Rita Cliente")
    page.select_option("select[name=type]", "text")
    page.fill("textarea[name=text]", "Olá, tem horário amanhã?")
    page.click("form.card button[type=submit]")
    page.wait_for_selector(".message.success")
    page.wait_for_selector(".bubble.customer[data-state=delivered]:has-text('tem horário amanhã')")
    message = wait_for(Message.objects.filter(number=number, text="Olá, tem horário amanhã?"))
    assert message.direction == "in"

    page.goto(server.url + "/settings/numbers/")
    card = page.locator(f"[data-number='{number.code}']")
    assert "none yet" not in card.inner_text()
    context.close()
