"""A newcomer signs up, signs in again, switches language and uses the app shell."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_up_sign_in_switch_language(live_asgi_server, browser):
    base = live_asgi_server.url
    page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="pt-BR")
    page.goto(base + "/accounts/signup/")
    page.fill("input[name=name]", "Dra. Helena")
    page.fill("input[name=email]", "helena@clinica.test")
    page.fill("input[name=password1]", "a-long-passphrase-42")
    page.fill("input[name=password2]", "a-long-passphrase-42")
    page.fill("input[name=organization_name]", "Clínica Helena")
    page.click("form button[type=submit]")
    page.wait_for_url(base + "/")
    assert page.locator(".org-name").inner_text() == "Clínica Helena"
    assert page.locator("html").get_attribute("lang") == "pt-br"
    nav = page.locator("nav.sidebar")
    assert "Caixa de entrada" in nav.inner_text()
    # The live websocket connects through the real ASGI server.
    page.wait_for_selector("#live-status[data-state=open]", timeout=10000)

    # Sign out and in again.
    page.click("details.user-menu summary")
    page.click("text=Sair")
    page.goto(base + "/accounts/login/")
    page.fill("input[name=login]", "helena@clinica.test")
    page.fill("input[name=password]", "a-long-passphrase-42")
    page.click("form button[type=submit]")
    page.wait_for_url(base + "/")

    # Switch to English from the user menu.
    page.click("details.user-menu summary")
    page.select_option("#language-select", "en")
    page.wait_for_load_state("load")
    page.wait_for_function("document.documentElement.lang === 'en'")
    assert "Inbox" in page.locator("nav.sidebar").inner_text()
    assert "Settings" in page.locator("nav.sidebar").inner_text()

    # Phone width: the navigation collapses behind the menu button.
    page.set_viewport_size({"width": 320, "height": 640})
    page.wait_for_timeout(400)  # the sidebar slides away (0.2 s transition)
    assert (
        not page.locator("nav.sidebar").is_visible()
        or page.locator("nav.sidebar").bounding_box()["x"] < 0
    )
    page.click("[data-nav-toggle]")
    page.wait_for_timeout(300)
    assert page.locator("nav.sidebar").bounding_box()["x"] >= 0
    page.close()
