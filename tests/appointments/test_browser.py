"""The issue's bar in a real browser against a real server: a customer on the sandbox phone
books "Limpeza" through the menus; it appears live in the receptionist's week view; the reminder
goes out when the clock reaches it; "Reschedule" moves the appointment (live again)."""

import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from accounts.models import Role
from appointments import availability, reminders
from appointments.models import Appointment
from inbox.models import Message
from integrations import services as channel
from tests.appointments.helpers import make_agenda
from tests.browser.test_live_inbox import make_org, member, sign_in, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = "5511955550000"


def latest_menu(number, after_id=0, timeout=15):
    """The newest interactive message the booking handler sent (the server works in the
    background: poll the database)."""
    query = Message.objects.filter(
        number=number, direction="out", type="interactive", author_ref="booking", pk__gt=after_id
    ).order_by("-pk")
    return wait_for(query, timeout)


def rows(message):
    interactive = message.content["interactive"]
    if interactive["type"] == "list":
        return [r for s in interactive["action"]["sections"] for r in s["rows"]]
    return [b["reply"] for b in interactive["action"]["buttons"]]


def phone(page, server, *, text="", reply_id=""):
    """Write (or tap a menu option, by its id) as the customer on the sandbox phone page."""
    page.goto(server.url + "/sandbox/phone/")
    page.fill("input[name=phone]", PHONE)
    page.fill("input[name=profile_name]", "Paula Paciente")
    page.select_option("select[name=type]", "button_reply" if reply_id else "text")
    page.fill("textarea[name=text]", text or "ok")
    if reply_id:
        page.fill("input[name=reply_id]", reply_id)
    page.click("form.card button[type=submit]")
    page.wait_for_selector(".message.success")


def choose(page, server, number, menu, pick):
    """Tap ``pick(rows)`` in ``menu`` and return the next menu."""
    row = pick(rows(menu))
    phone(page, server, reply_id=row["id"], text=row["title"])
    return latest_menu(number, after_id=menu.pk)


def test_book_on_the_phone_see_it_live_remind_and_reschedule(live_asgi_server, browser):
    server = live_asgi_server
    org, number = make_org("Clínica Agenda", "clinica-agenda", "7301")
    receptionist = member(org, "recepcao@agenda.test", Role.OPERATOR, "Paula Recepção")
    make_agenda(org)

    customer = sign_in(browser, server, receptionist)  # the sandbox phone is a member's tool
    phone(customer, server, text="agendar")
    services_menu = latest_menu(number)
    days_menu = choose(
        customer,
        server,
        number,
        services_menu,
        lambda r: next(x for x in r if x["title"] == "Limpeza"),
    )
    # A day two or more days ahead: its times are over 24 hours away, so the 24-hour reminder
    # is scheduled at whatever time of day the suite runs (one already due at booking is not).
    soon = (
        timezone.now().astimezone(availability.zone(org)).date() + timedelta(days=2)
    ).isoformat()

    def later(day_rows):
        return next(r for r in day_rows if r["id"].removeprefix("book:day:") >= soon)

    day = later(rows(days_menu))["id"].removeprefix("book:day:")

    calendar = sign_in(browser, server, receptionist)
    calendar.goto(f"{server.url}/agenda/?view=week&date={day}")
    calendar.wait_for_function("document.documentElement.dataset.live === 'open'", timeout=10000)
    assert "Paula Paciente" not in calendar.inner_text("#calendar-grid")

    times_menu = choose(customer, server, number, days_menu, later)
    choose(customer, server, number, times_menu, lambda r: r[1])
    phone(customer, server, reply_id="book:yes", text="Confirm")
    appointment = wait_for(Appointment.objects.filter(contact__wa_id=PHONE))
    assert appointment.service.name == "Limpeza" and appointment.channel == "bot"
    # Live: the week view shows it without a reload.
    calendar.wait_for_selector(f".appt[data-appointment='{appointment.code}']", timeout=10000)
    assert "Paula Paciente" in calendar.inner_text("#calendar-grid")

    # The clock reaches 24 hours before: the reminder goes out, with its three buttons.
    with override_settings(SANDBOX_URL=server.sandbox_url, SANDBOX_WEBHOOK_BASE_URL=server.url):
        channel._registered_with_sandbox.clear()
        assert reminders.reminders_due_send(now=appointment.starts_at - timedelta(hours=25)) == 0
        assert reminders.reminders_due_send(now=appointment.starts_at - timedelta(hours=23)) == 1
    reminder = Message.objects.filter(number=number, author_ref="booking").order_by("-pk").first()
    assert [b["title"] for b in rows(reminder)] == ["Confirm", "Reschedule", "Cancel visit"]
    deadline = time.monotonic() + 10
    while Message.objects.get(pk=reminder.pk).status == "pending" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert Message.objects.get(pk=reminder.pk).status in ("sent", "delivered", "read")

    # "Reschedule" re-enters the menus and moves it; the calendar follows.
    phone(customer, server, reply_id=f"appt:{appointment.code}:reschedule", text="Reschedule")
    days_again = latest_menu(number, after_id=reminder.pk)
    times_again = choose(customer, server, number, days_again, lambda r: r[0])
    choose(customer, server, number, times_again, lambda r: r[-2])
    phone(customer, server, reply_id="book:yes", text="Confirm")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        moved = Appointment.objects.get(pk=appointment.pk)
        if moved.reschedule_count == 1:
            break
        time.sleep(0.1)
    assert moved.reschedule_count == 1 and moved.starts_at != appointment.starts_at
    assert Appointment.objects.count() == 1
    new_time = moved.starts_at.astimezone(availability.zone(org)).strftime("%H:%M")
    calendar.wait_for_selector(
        f".appt[data-appointment='{moved.code}'] strong:has-text('{new_time}')", timeout=10000
    )


def test_month_view_creates_moves_and_cancels(live_asgi_server, browser):
    """The month view edits like the day and week views: '+' on a day opens the booking form,
    dragging an appointment to another day moves it (same time), the panel cancels it."""
    from tests.appointments.helpers import at, next_weekday

    server = live_asgi_server
    org, _number = make_org("Clínica Mês", "clinica-mes", "7302")
    receptionist = member(org, "recepcao@mes.test", Role.OPERATOR, "Rita Recepção")
    agenda = make_agenda(org)
    monday = next_weekday(0, after_days=3)
    tuesday = monday + timedelta(days=1)

    page = sign_in(browser, server, receptionist)
    page.goto(f"{server.url}/agenda/?view=month&date={monday}")
    page.click(f".agenda-month-day[data-date='{monday}'] .agenda-month-add")
    page.wait_for_selector("#appointment-form")
    assert page.input_value("#appointment-form input[name=date]") == monday.isoformat()
    page.select_option("#appointment-form select[name=service]", str(agenda["cleaning"].code))
    page.select_option("#appointment-form select[name=professional]", str(agenda["ana"].code))
    page.fill("#appointment-form input[name=time]", "09:00")
    page.fill("#appointment-form input[name=customer_name]", "Marta Mensal")
    page.click("#appointment-form button")
    appointment = wait_for(Appointment.objects.filter(customer_name="Marta Mensal"))
    assert appointment.starts_at == at(monday, 9)
    block = f".agenda-month-day[data-date='{monday}'] .appt[data-appointment='{appointment.code}']"
    page.wait_for_selector(block, timeout=10000)

    # Drag and drop (the HTML5 events a mouse drag fires; headless input does not start one).
    target = f".agenda-month-day[data-date='{tuesday}']"
    transfer = page.evaluate_handle("new DataTransfer()")
    page.dispatch_event(block, "dragstart", {"dataTransfer": transfer})
    page.dispatch_event(target, "dragover", {"dataTransfer": transfer})
    page.dispatch_event(target, "drop", {"dataTransfer": transfer})
    page.wait_for_selector(
        f".agenda-month-day[data-date='{tuesday}'] .appt[data-appointment='{appointment.code}']",
        timeout=10000,
    )
    appointment.refresh_from_db()
    assert appointment.starts_at == at(tuesday, 9)

    page.wait_for_selector("#appointment-detail")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#appointment-detail form[action$='/cancel/'] button")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        appointment.refresh_from_db()
        if appointment.status == "cancelled":
            break
        time.sleep(0.1)
    assert appointment.status == "cancelled"
