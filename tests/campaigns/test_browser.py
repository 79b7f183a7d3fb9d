"""A manager creates a campaign in the browser: choosing the template brings its variables."""

import tempfile
from pathlib import Path

import pytest

from accounts.models import Membership, Role
from tests.base import PASSWORD, make_org, make_user
from tests.campaigns.helpers import make_contacts, make_template

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_create_a_campaign_with_variables_and_see_the_preview(live_asgi_server, browser):
    organization, number = make_org("Clínica Browser", "clinica-browser", "666")
    user = make_user("mara@browser.test", "Mara")
    Membership.objects.create(user=user, organization=organization, role=Role.MANAGER)
    make_template(number, "appointment_reminder")
    make_contacts(organization, 2)

    base = live_asgi_server.url
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(base + "/accounts/login/")
    page.fill("input[name=login]", "mara@browser.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(base + "/")

    page.goto(base + "/campaigns/new/")
    page.fill("input[name=name]", "Confirmações")
    page.select_option("select[name=number]", str(number.pk))
    page.select_option("select[name=template]", label="appointment_reminder (pt_BR)")
    page.wait_for_selector("select[name=var_body_3_source]")
    page.select_option("select[name=var_body_0_source]", "first_name")
    for index, text in ((1, "Dra. Ana"), (2, "12/05"), (3, "14:30")):
        page.select_option(f"select[name=var_body_{index}_source]", "fixed")
        page.fill(f"input[name=var_body_{index}_value]", text)
    page.click("form.card button[type=submit]")
    page.wait_for_selector("#campaign-stats")
    assert "Olá Cliente, lembramos da sua consulta com Dra. Ana em 12/05 às 14:30" in page.content()
    page.close()


def test_a_contact_import_shows_its_progress_live_until_it_finishes(live_asgi_server, browser):
    """The import runs on the server's bulk threads; the page polls its progress part (htmx)
    and shows the outcome without a reload, with the bad row to download."""
    organization, _number = make_org("Clínica Importa", "clinica-importa", "667")
    user = make_user("ana@importa.test", "Ana")
    Membership.objects.create(user=user, organization=organization, role=Role.ADMIN)
    lines = ["phone,name"] + [f"+55119{71000000 + i:08d},Cliente {i}" for i in range(3000)]
    lines.insert(1500, "12345,Sem telefone")
    path = Path(tempfile.mkdtemp()) / "contatos.csv"
    path.write_text("\n".join(lines) + "\n")

    base = live_asgi_server.url
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(base + "/accounts/login/")
    page.fill("input[name=login]", "ana@importa.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(base + "/")
    page.goto(base + "/campaigns/contacts/import/")
    page.set_input_files("input[name=file]", str(path))
    page.click("form.card button[type=submit]")
    page.wait_for_selector("select[name=col_0]")
    page.select_option("select[name=col_0]", "phone")
    page.select_option("select[name=col_1]", "name")
    page.click("form.card button[type=submit]")
    page.wait_for_selector("#import-progress")
    address = page.url
    page.wait_for_selector('#import-progress[data-status="done"]', timeout=120_000)
    assert page.url == address  # updated in place, never reloaded
    assert page.locator("#import-progress progress").get_attribute("value") == "100"
    text = page.inner_text("#import-progress")
    assert "3000 created" in text
    assert "1 row was not imported" in text
    with page.expect_download() as download:
        page.click("text=Download them with the reason")
    assert "Sem telefone" in Path(download.value.path()).read_text()
    page.close()
