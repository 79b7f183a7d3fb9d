"""Team features in a real browser against a real server: mentions in private notes."""

import pytest

from accounts.models import Role
from inbox.models import Chat, Message, Notification
from tests.browser.test_live_inbox import customer_writes, make_org, member, sign_in, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_note_mentioning_a_teammate_notifies_them(live_asgi_server, browser):
    org, number = make_org("Clínica Notas", "clinica-notas", "7201")
    olga = member(org, "olga@notas.test", Role.OPERATOR, "Olga Operator")
    mario = member(org, "mario@notas.test", Role.MANAGER, "Mario Manager")
    member(org, "marta@notas.test", Role.AGENT, "Marta Agent")
    customer_writes(live_asgi_server, number, "Posso pagar com pix?")
    chat = wait_for(Chat.objects.filter(number=number))

    mentioned = sign_in(browser, live_asgi_server, mario)
    mentioned.goto(live_asgi_server.url + "/inbox/?status=any")
    mentioned.wait_for_selector("#live-status[data-state=open]", timeout=10000)
    assert mentioned.locator("[data-notification-count]").is_hidden()

    writer = sign_in(browser, live_asgi_server, olga)
    writer.goto(f"{live_asgi_server.url}/inbox/{chat.code}/")
    writer.wait_for_selector("#live-status[data-state=open]", timeout=10000)
    writer.click("[data-composer-tab=note]")
    # The tab puts the cursor in the note box: typing right away is not lost.
    writer.keyboard.type("Pode confirmar o pix, @Mar")
    options = writer.locator("#mention-suggestions li")
    options.first.wait_for()
    assert options.all_inner_texts() == ["Mario Manager @Mario", "Marta Agent @Marta"]
    writer.keyboard.press("ArrowDown")
    writer.keyboard.press("ArrowUp")
    writer.keyboard.press("Enter")  # picks the suggestion, does not send
    assert writer.input_value("#note-text") == "Pode confirmar o pix, @Mario "
    writer.keyboard.press("Shift+Enter")
    writer.keyboard.type("obrigada!")
    writer.keyboard.press("Enter")  # sends the note
    writer.wait_for_selector("#thread .msg-note:has-text('obrigada!')", timeout=10000)
    assert writer.input_value("#note-text") == ""
    note = Message.objects.get(chat=chat, type=Message.Type.NOTE)
    assert note.text == "Pode confirmar o pix, @Mario \nobrigada!"

    # The mentioned manager sees it live in the bell menu, on whatever page he is.
    mentioned.wait_for_function(
        "() => document.querySelector('[data-notification-count]')?.textContent === '1'",
        timeout=10000,
    )
    mentioned.click(".notifications-button")
    item = mentioned.locator("#notifications-panel a.notification").first
    assert "Olga Operator mentioned you" in item.inner_text()
    # Stored, so it survives a reload; opening the chat reads it.
    mentioned.reload()
    assert mentioned.inner_text("[data-notification-count]") == "1"
    mentioned.click(".notifications-button")
    mentioned.click("#notifications-panel a.notification")
    mentioned.wait_for_url(f"**/inbox/{chat.code}/")
    assert not Notification.objects.filter(user=mario, read_at=None).exists()
    assert not Notification.objects.filter(user__email="marta@notas.test").exists()


def test_a_message_sent_later_goes_out_at_its_time_after_the_server_restarts(
    live_asgi_server, browser
):
    """Written in the composer for a few seconds later; the server process is killed before
    that and a new one started: the message still goes out, once, at its time."""
    import zoneinfo
    from datetime import timedelta

    from django.utils import timezone

    from inbox.models import Contact, ScheduledMessage
    from tests.servers import ServerProcess

    org, number = make_org("Clínica Depois", "clinica-depois", "7202")
    olga = member(org, "olga@depois.test", Role.OPERATOR, "Olga Operator")
    contact = Contact.objects.create(
        organization=org, wa_id="5511933332222", phone="+5511933332222", name="Rui"
    )
    now = timezone.now()
    chat = Chat.objects.create(
        organization=org,
        contact=contact,
        number=number,
        last_message_at=now,
        window_expires_at=now + timedelta(hours=5),
    )
    page = sign_in(browser, live_asgi_server, olga)
    page.goto(f"{live_asgi_server.url}/inbox/{chat.code}/")
    page.wait_for_selector("#live-status[data-state=open]", timeout=10000)

    send_at = timezone.now() + timedelta(seconds=12)
    local = send_at.astimezone(zoneinfo.ZoneInfo(org.time_zone))
    page.fill("#composer-text", "Lembrete: sua consulta é amanhã às 9h.")
    page.click(".send-later summary")
    page.fill("#send-later-at", local.strftime("%Y-%m-%dT%H:%M:%S"))
    page.click("[data-send-later]")
    page.wait_for_selector("#scheduled-list .scheduled-item", timeout=5000)
    assert page.input_value("#composer-text") == ""
    item = ScheduledMessage.objects.get(chat=chat)
    assert item.status == ScheduledMessage.Status.PENDING
    assert abs((item.send_at - send_at).total_seconds()) < 1

    # A second one, cancelled: it never goes out.
    page.fill("#composer-text", "Mensagem cancelada")
    page.click(".send-later summary")
    page.fill("#send-later-at", local.strftime("%Y-%m-%dT%H:%M:%S"))
    page.click("[data-send-later]")
    page.wait_for_selector("#scheduled-list .scheduled-item:has-text('Mensagem cancelada')")
    page.click(
        "#scheduled-list .scheduled-item:has-text('Mensagem cancelada') button:has-text('Cancel')"
    )
    page.wait_for_selector(
        "#scheduled-list .scheduled-item:has-text('Mensagem cancelada')", state="detached"
    )

    # The worker dies before the time, and a new process takes over on the same address.
    live_asgi_server.process.kill()
    live_asgi_server.process.wait(10)
    restarted = ServerProcess(port=live_asgi_server.port).start()
    try:
        assert ScheduledMessage.objects.get(pk=item.pk).status == "pending"
        sent = wait_for(
            Message.objects.filter(chat=chat, direction=Message.Direction.OUTBOUND), timeout=40
        )
        assert sent.text == "Lembrete: sua consulta é amanhã às 9h."
        assert sent.created_at >= send_at - timedelta(seconds=1)
        item.refresh_from_db()
        assert item.status == ScheduledMessage.Status.SENT and item.message_id == sent.pk
        # The page reconnects to the new process and shows it.
        page.wait_for_selector("#thread .msg-out:has-text('Lembrete: sua consulta')", timeout=20000)
        assert Message.objects.filter(chat=chat, direction=Message.Direction.OUTBOUND).count() == 1
    finally:
        restarted.stop()


def test_the_open_chat_stays_read_reactions_make_no_404_and_a_resolved_chat_leaves_the_list(
    live_asgi_server, browser
):
    org, number = make_org("Clínica Lida", "clinica-lida", "7203")
    olga = member(org, "olga@lida.test", Role.OPERATOR, "Olga Operator")
    customer_writes(live_asgi_server, number, "Oi, bom dia")
    chat = wait_for(Chat.objects.filter(number=number))
    page = sign_in(browser, live_asgi_server, olga)
    missing = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.goto(f"{live_asgi_server.url}/inbox/{chat.code}/?view=all&status=open")
    page.wait_for_selector("#live-status[data-state=open]", timeout=10000)
    row = f"#chat-{chat.code}"
    page.wait_for_selector(row)

    customer_writes(live_asgi_server, number, "Vocês atendem convênio?")
    page.wait_for_selector("#thread .msg-in:has-text('convênio')", timeout=10000)
    page.wait_for_function(
        "sel => document.querySelector(sel + ' .preview')?.textContent.includes('convênio')",
        arg=row,
        timeout=10000,
    )
    page.wait_for_timeout(500)
    assert page.locator(f"{row} .badge.count").count() == 0  # read: it is on screen
    chat.refresh_from_db()
    assert chat.unread_count == 0

    entry = page.locator("#thread .msg-in:has-text('convênio')")
    entry.hover()
    entry.locator("[data-msg-action=react][data-emoji='👍']").click()
    page.wait_for_selector("#thread .msg-in:has-text('convênio') .msg-reactions", timeout=10000)
    page.wait_for_timeout(1500)  # the reaction's statuses come back from the sandbox
    assert "convênio" in page.inner_text(f"{row} .preview")
    chat.refresh_from_db()
    assert "convênio" in chat.last_message_preview
    assert missing == []

    page.click("#chat-header button[value=resolved]")
    page.wait_for_selector(row, state="detached", timeout=10000)
    assert missing == []
