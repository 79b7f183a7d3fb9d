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


def _sign_in(browser, base, email, viewport=None):
    page = browser.new_page(viewport=viewport or {"width": 1440, "height": 900})
    page.goto(base + "/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(base + "/")
    return page


def test_defaults_never_repeat_the_name_and_launch_asks_for_confirmation(live_asgi_server, browser):
    """A template synced from Meta carries sample values: a new campaign starts from the first
    name for {{1}} and the samples for the rest, the preview shows each recipient's own text,
    and "Launch" shows the counts before anything is sent."""
    from campaigns.models import Campaign
    from inbox.models import Contact

    organization, number = make_org("Clínica Preview", "clinica-preview", "667")
    user = make_user("lia@preview.test", "Lia")
    Membership.objects.create(user=user, organization=organization, role=Role.MANAGER)
    template = make_template(number, "appointment_reminder")
    template.components[1]["example"] = {"body_text": [["Juliana", "Dra. Ana", "12/05", "14:30"]]}
    template.save()
    for index, name in enumerate(["Juliana Martins", "Pedro Alves"]):
        Contact.objects.create(
            organization=organization,
            wa_id=f"55219870000{index}",
            phone=f"+55219870000{index}",
            name=name,
            opt_in=Contact.OptIn.OPTED_IN,
        )
    Contact.objects.create(
        organization=organization,
        wa_id="552198700009",
        phone="+552198700009",
        name="Otto Saiu",
        opt_in=Contact.OptIn.OPTED_OUT,
    )

    base = live_asgi_server.url
    page = _sign_in(browser, base, "lia@preview.test")
    page.goto(base + "/campaigns/new/")
    page.fill("input[name=name]", "Lembretes")
    page.select_option("select[name=number]", str(number.pk))
    page.select_option("select[name=template]", label="appointment_reminder (pt_BR)")
    page.wait_for_selector("select[name=var_body_3_source]")
    assert page.input_value("select[name=var_body_0_source]") == "first_name"
    assert page.input_value("select[name=var_body_1_source]") == "fixed"
    assert page.input_value("input[name=var_body_1_value]") == "Dra. Ana"
    # Only the fields that matter for the chosen source are shown.
    assert not page.is_visible("input[name=var_body_0_value]")
    assert page.is_visible("input[name=var_body_1_value]")
    assert not page.is_visible("select[name=var_body_1_assistant]")
    page.click("form.card button[type=submit]")
    page.wait_for_selector("#campaign-stats")

    previews = page.locator("#campaign-previews .preview-bubble").all_inner_texts()
    assert previews == [
        "Olá Juliana, lembramos da sua consulta com Dra. Ana em 12/05 às 14:30. "
        "Podemos confirmar sua presença?",
        "Olá Pedro, lembramos da sua consulta com Dra. Ana em 12/05 às 14:30. "
        "Podemos confirmar sua presença?",
    ]
    # The message card is wide enough to read at 1440 px.
    card = page.locator("section.card:has(#campaign-previews)").bounding_box()
    assert card["width"] > 400
    assert page.locator("input[name=phone]").bounding_box()["width"] > 150

    campaign = Campaign.objects.get(name="Lembretes")
    page.click("text=Launch")
    page.wait_for_selector("#launch-confirm")
    assert page.inner_text("[data-count=audience]") == "2"
    assert page.inner_text("[data-count=sendable]") == "2"
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT  # nothing went out yet
    page.click("#launch-confirm button[type=submit]")
    page.wait_for_selector("#campaign-stats")
    campaign.refresh_from_db()
    assert campaign.status != Campaign.Status.DRAFT
    page.close()
