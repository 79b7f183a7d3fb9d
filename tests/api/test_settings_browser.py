"""An admin creates an API key and a webhook in Settings, in a real browser."""

import pytest

from accounts.models import Membership, Organization, Role
from tests.base import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_creates_a_key_and_a_webhook(live_asgi_server, browser, tmp_path):
    organization = Organization.objects.create(
        name="Clínica Browser", slug="clinica-browser", language="en"
    )
    admin = make_user("admin@browser.test", "Bia Admin")
    Membership.objects.create(user=admin, organization=organization, role=Role.ADMIN)
    base = live_asgi_server.url
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(base + "/accounts/login/")
    page.fill("input[name=login]", admin.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(base + "/")

    page.goto(base + "/settings/api-keys/")
    page.fill("input[name=name]", "Clinic ERP")
    page.select_option("select[name=scope_messages]", "write")
    page.click("text=Create key")
    secret = page.locator("[data-api-key-secret]").inner_text()
    assert secret.startswith("pfk_")
    page.screenshot(path=str(tmp_path / "api-keys.png"), full_page=True)
    page.goto(base + "/settings/api-keys/")
    assert secret not in page.content()
    assert "Clinic ERP" in page.content()

    page.goto(base + "/settings/webhooks/")
    page.fill("input[name=url]", "https://hooks.example.com/porfin")
    page.check("input[value='message.received']")
    page.click("text=Add webhook")
    page.wait_for_selector("[data-verify-snippet]")
    assert "hooks.example.com" in page.content()
    assert page.locator("[data-webhook-secret]").inner_text().startswith("whsec_")
    page.screenshot(path=str(tmp_path / "webhook.png"), full_page=True)
    page.close()
