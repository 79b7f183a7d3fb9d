"""A manager tries the assistant in the playground of a real server, in Debian chromium."""

import pytest

from accounts.models import Membership, Organization, Role
from assistants import services
from assistants.models import AISettings, Assistant
from tests.assistants.openai_stub import OpenAIStub
from tests.base import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_playground_answers_and_shows_sources_and_usage(live_asgi_server, browser):
    stub = OpenAIStub().start()
    try:
        organization = Organization.objects.create(name="Clínica Play", slug="play", language="en")
        user = make_user("mara@play.test", "Mara")
        Membership.objects.create(user=user, organization=organization, role=Role.MANAGER)
        AISettings.objects.create(organization=organization, api_key="sk", base_url=stub.base_url)
        assistant = Assistant(organization=organization, name="Sofia")
        services.assistant_save(assistant=assistant, user=user)
        services.knowledge_add(
            assistant=assistant,
            kind="text",
            title="Preços",
            text="A limpeza custa R$ 180 e inclui flúor.",
        )
        stub.script(
            {"content": "A limpeza custa R$ 180.", "prompt_tokens": 250, "completion_tokens": 9},
            {"content": "Inclui flúor, sim.", "prompt_tokens": 300, "completion_tokens": 5},
        )
        base = live_asgi_server.url
        page = browser.new_page(viewport={"width": 1280, "height": 860}, locale="en-US")
        page.goto(base + "/accounts/login/")
        page.fill("input[name=login]", user.email)
        page.fill("input[name=password]", PASSWORD)
        page.click("form button[type=submit]")
        page.wait_for_url(base + "/")
        page.goto(f"{base}/assistants/{assistant.code}/playground/")
        page.fill("#id_text", "Quanto custa a limpeza?")
        page.click("#playground button[type=submit]")
        page.wait_for_selector("text=A limpeza custa R$ 180.")
        meta = page.locator(".turn-meta").last
        assert "250 tokens in" in meta.inner_text()
        assert "ms" in meta.locator("[data-latency]").inner_text()
        meta.locator("summary", has_text="Sources").click()
        assert "Preços" in meta.locator("[data-source]").inner_text()
        # A second turn keeps the conversation (sent back as history).
        page.fill("#id_text", "Tem flúor?")
        page.click("#playground button[type=submit]")
        page.wait_for_selector("text=Inclui flúor, sim.")
        assert page.locator("[data-role=user]").count() == 2
        assert stub.chat_requests()[-1]["messages"][-3]["content"] == "Quanto custa a limpeza?"
        page.close()
    finally:
        stub.stop()
