"""Team inbox operations: auto-assignment, snooze, quick replies, send later (the window is
checked at send time), and the settings page for teams."""

from datetime import timedelta

from asgiref.sync import async_to_sync
from django.test import TestCase
from django.utils import timezone

from accounts.models import Membership, Role, Team
from inbox import presence, services, teamwork
from inbox.models import Chat, Message, Notification, QuickReply, ScheduledMessage
from tests.base import make_chat, make_org, make_user
from tests.campaigns.helpers import inbound


class AutoAssignmentTests(TestCase):
    def setUp(self):
        self.org, self.number = make_org("Clínica Equipe", "clinica-equipe", "801")
        self.people = {}
        for name in ("ana", "bia", "caio", "davi"):
            user = make_user(f"{name}@equipe.test", name.title())
            Membership.objects.create(user=user, organization=self.org, role=Role.AGENT)
            self.people[name] = user
        self.team = Team.objects.create(organization=self.org, name="Recepção", auto_assign=True)
        self.team.members.set([self.people[n] for n in ("ana", "bia", "caio")])
        for name in ("ana", "bia", "caio", "davi"):  # davi is online but not in the team
            async_to_sync(presence.seen)(self.org.pk, self.people[name].pk)

    def receive(self, wa_id: str) -> Chat:
        with self.captureOnCommitCallbacks(execute=True):
            message = services.message_receive(
                number=self.number, inbound=inbound(self.number, wa_id, "Oi")
            )
        return Chat.objects.get(pk=message.chat_id)

    def test_new_chats_are_dealt_in_turn_among_online_members_under_their_limit(self):
        Membership.objects.filter(user=self.people["bia"]).update(max_open_chats=1)
        make_chat(self.org, self.number, "5511900000001", "Já da Bia", self.people["bia"])
        async_to_sync(presence.gone)(self.org.pk, self.people["caio"].pk)

        chats = [self.receive(f"55119888800{i:02d}") for i in range(3)]
        # Bia is full and Caio offline: every chat goes to Ana, the only one with room.
        self.assertEqual([c.assignee for c in chats], [self.people["ana"]] * 3)
        self.assertEqual({c.team_id for c in chats}, {self.team.pk})
        self.assertEqual(Notification.objects.filter(user=self.people["ana"]).count(), 3)

        async_to_sync(presence.seen)(self.org.pk, self.people["caio"].pk)
        Membership.objects.filter(user=self.people["bia"]).update(max_open_chats=0)
        chats = [self.receive(f"55119777700{i:02d}") for i in range(3)]
        self.assertEqual(
            [c.assignee.email for c in chats],
            ["bia@equipe.test", "caio@equipe.test", "ana@equipe.test"],
        )
        activity = chats[0].messages.filter(type=Message.Type.ACTIVITY).last()
        self.assertIn("Recepção", activity.text)

    def test_nobody_online_with_room_leaves_the_chat_to_the_team(self):
        for name in ("ana", "bia", "caio"):
            async_to_sync(presence.gone)(self.org.pk, self.people[name].pk)
        chat = self.receive("5511966660000")
        self.assertIsNone(chat.assignee)
        self.assertEqual(chat.team, self.team)

    def test_without_an_auto_assigning_team_chats_stay_unassigned(self):
        Team.objects.filter(pk=self.team.pk).update(auto_assign=False)
        self.assertIsNone(self.receive("5511955550000").assignee)


class SnoozeAndLaterTests(TestCase):
    def setUp(self):
        self.org, self.number = make_org("Clínica Soneca", "clinica-soneca", "802")
        self.user = make_user("rita@soneca.test", "Rita Recepção")
        Membership.objects.create(user=self.user, organization=self.org, role=Role.OPERATOR)
        self.chat = make_chat(self.org, self.number, "5511944440000", "Lia", self.user)

    def test_a_snoozed_chat_leaves_the_open_list_and_the_tick_brings_it_back(self):
        until = timezone.now() + timedelta(hours=2)
        teamwork.chat_snooze(chat=self.chat, until=until, actor=self.user)
        self.chat.refresh_from_db()
        self.assertEqual(self.chat.status, Chat.Status.PENDING)
        self.assertEqual(teamwork.snoozes_wake(now=until - timedelta(minutes=1)), 0)
        self.assertEqual(teamwork.snoozes_wake(now=until + timedelta(seconds=1)), 1)
        self.chat.refresh_from_db()
        self.assertEqual(self.chat.status, Chat.Status.OPEN)
        self.assertIsNone(self.chat.snoozed_until)
        self.assertTrue(Notification.objects.filter(user=self.user, text__contains="Lia").exists())
        self.assertEqual(teamwork.snoozes_wake(now=until + timedelta(hours=1)), 0)

    def test_a_customer_message_ends_the_snooze(self):
        teamwork.chat_snooze(
            chat=self.chat, until=timezone.now() + timedelta(days=1), actor=self.user
        )
        with self.captureOnCommitCallbacks(execute=True):
            services.message_receive(
                number=self.number, inbound=inbound(self.number, "5511944440000", "Voltei")
            )
        self.chat.refresh_from_db()
        self.assertIsNone(self.chat.snoozed_until)
        self.assertEqual(self.chat.status, Chat.Status.OPEN)

    def test_a_message_due_after_the_window_closed_is_not_sent_and_its_author_is_told(self):
        Chat.objects.filter(pk=self.chat.pk).update(
            window_expires_at=timezone.now() + timedelta(minutes=5)
        )
        self.chat.refresh_from_db()
        item = teamwork.scheduled_create(
            chat=self.chat,
            author=self.user,
            text="Bom dia!",
            send_at=timezone.now() + timedelta(minutes=10),
        )
        self.assertEqual(teamwork.scheduled_send_due(), 0)  # not due yet
        self.assertEqual(teamwork.scheduled_send_due(now=timezone.now() + timedelta(minutes=11)), 0)
        item.refresh_from_db()
        self.assertEqual(item.status, ScheduledMessage.Status.FAILED)
        self.assertIn("24-hour", item.error)
        self.assertFalse(self.chat.messages.filter(direction=Message.Direction.OUTBOUND).exists())
        self.assertTrue(Notification.objects.filter(user=self.user, text__contains="Lia").exists())

    def test_a_cancelled_message_is_never_sent(self):
        item = teamwork.scheduled_create(
            chat=self.chat,
            author=self.user,
            text="Bom dia!",
            send_at=timezone.now() + timedelta(minutes=10),
        )
        self.assertTrue(teamwork.scheduled_cancel(item=item))
        self.assertFalse(teamwork.scheduled_cancel(item=item))
        self.assertEqual(teamwork.scheduled_send_due(now=timezone.now() + timedelta(hours=1)), 0)

    def test_the_past_is_refused(self):
        with self.assertRaisesMessage(Exception, "future"):
            teamwork.scheduled_create(
                chat=self.chat, author=self.user, text="x", send_at=timezone.now()
            )


class QuickReplyAndTeamPagesTests(TestCase):
    def setUp(self):
        self.org, self.number = make_org("Clínica Atalho", "clinica-atalho", "803")
        self.admin = make_user("adm@atalho.test", "Adriana Admin")
        self.agent = make_user("ag@atalho.test", "Gil Agent")
        Membership.objects.create(user=self.admin, organization=self.org, role=Role.ADMIN)
        Membership.objects.create(user=self.agent, organization=self.org, role=Role.AGENT)
        self.chat = make_chat(self.org, self.number, "5511933330000", "Júlia Souza", self.agent)
        Chat.objects.filter(pk=self.chat.pk).update(
            window_expires_at=timezone.now() + timedelta(hours=3)
        )

    def test_an_agent_writes_personal_replies_only_and_the_composer_fills_variables(self):
        self.client.force_login(self.agent)
        self.client.post(
            "/inbox/quick-replies/",
            {"shortcut": "oi", "text": "Olá {{first_name}}, aqui é {{agent}}.", "personal": ""},
        )
        reply = QuickReply.objects.get(shortcut="oi")
        self.assertEqual(reply.owner, self.agent)  # forced personal without full access
        page = self.client.get(f"/inbox/{self.chat.code}/").content.decode()
        self.assertIn("Olá Júlia, aqui é Gil.", page)
        self.client.force_login(self.admin)
        self.assertNotIn(
            "/oi", self.client.get("/inbox/quick-replies/").content.decode()
        )  # someone else's personal reply stays theirs

    def test_the_admin_creates_a_team_and_sets_a_limit(self):
        self.client.force_login(self.admin)
        response = self.client.post(
            "/settings/teams/new/",
            {"new-name": "Recepção", "new-members": [self.agent.pk], "new-auto_assign": "on"},
        )
        self.assertEqual(response.status_code, 302)
        team = Team.objects.get(organization=self.org)
        self.assertEqual(list(team.members.all()), [self.agent])
        self.assertTrue(team.auto_assign)
        membership = Membership.objects.get(user=self.agent)
        self.client.post(f"/settings/members/{membership.pk}/capacity/", {"max_open_chats": 5})
        membership.refresh_from_db()
        self.assertEqual(membership.max_open_chats, 5)
        page = self.client.get("/settings/teams/").content.decode()
        self.assertIn("Recepção", page)
        self.client.force_login(self.agent)
        self.assertEqual(
            self.client.post("/settings/teams/new/", {"new-name": "X"}).status_code, 403
        )


class RejectedMediaTests(TestCase):
    def test_a_voice_note_whose_file_was_refused_shows_why_not_a_spinner(self):
        from django.template.loader import render_to_string

        from inbox.models import Media
        from inbox.selectors import timeline_entries

        org, number = make_org("Clínica Áudio", "clinica-audio", "804")
        chat = make_chat(org, number, "5511922220000", "Rui")
        message = Message.objects.create(
            organization=org,
            chat=chat,
            number=number,
            direction=Message.Direction.INBOUND,
            type=Message.Type.AUDIO,
            content={"type": "audio", "audio": {"id": "m1", "voice": True}},
            error_code=131053,
            error_title="Media not stored: Unsupported type",
            error_details="audio/wav is not a WhatsApp audio type",
            author_type=Message.Author.CUSTOMER,
        )
        Media.objects.create(organization=org, message=message, mime_type="audio/wav")
        html = render_to_string(
            "inbox/_message.html", {"message": timeline_entries().get(pk=message.pk)}
        )
        self.assertIn("could not be stored", html)
        self.assertIn("audio/wav is not a WhatsApp audio type", html)
        self.assertNotIn("msg-spinner", html)


class MoneyTests(TestCase):
    def test_prices_in_dollars_show_in_the_organizations_currency(self):
        from decimal import Decimal

        from django.utils import translation

        from accounts.money import money

        org, _number = make_org("Clínica Real", "clinica-real", "805")
        org.usd_rate = Decimal("5.00")
        with translation.override("pt-br"):
            self.assertEqual(money(Decimal("1.50"), org), "R$ 7,50")
        org.currency = "USD"
        with translation.override("en"):
            self.assertEqual(money(Decimal("1234.5"), org), "US$ 1,234.50")


class RichComposerTests(TestCase):
    def setUp(self):
        self.org, self.number = make_org("Clínica Rica", "clinica-rica", "806")
        self.user = make_user("op@rica.test", "Otávio")
        Membership.objects.create(user=self.user, organization=self.org, role=Role.OPERATOR)
        self.chat = make_chat(self.org, self.number, "5511911110000", "Lia")
        Chat.objects.filter(pk=self.chat.pk).update(
            window_expires_at=timezone.now() + timedelta(hours=3)
        )
        self.client.force_login(self.user)

    def send(self, **data):
        return self.client.post(
            f"/inbox/{self.chat.code}/rich/", data, headers={"HX-Request": "true"}
        )

    def test_location_card_buttons_and_list_are_sent_and_shown(self):
        response = self.send(
            kind="location", latitude="-23.58", longitude="-46.63", place="Clínica Rica"
        )
        self.assertEqual(response.status_code, 201)
        self.assertContains(response, "Clínica Rica", status_code=201)
        response = self.send(kind="contacts", contact_name="Dra. Helena", contact_phone="+5511999")
        self.assertContains(response, "Dra. Helena", status_code=201)
        response = self.send(kind="buttons", body="Confirma amanhã?", options="Sim\nNão")
        self.assertContains(response, "Confirma amanhã?", status_code=201)
        self.assertContains(response, "Não", status_code=201)
        response = self.send(
            kind="list",
            body="Escolha o horário",
            list_button="Horários",
            options="9h | manhã\n14h | tarde",
        )
        self.assertContains(response, "Escolha o horário", status_code=201)
        sent = list(
            self.chat.messages.filter(direction=Message.Direction.OUTBOUND)
            .order_by("pk")
            .values_list("type", flat=True)
        )
        self.assertEqual(sent, ["location", "contacts", "interactive", "interactive"])
        listed = self.chat.messages.order_by("pk").last().content["interactive"]
        self.assertEqual(listed["action"]["sections"][0]["rows"][1]["description"], "tarde")

    def test_bad_input_is_refused_with_a_reason(self):
        response = self.send(kind="buttons", body="Escolha", options="1\n2\n3\n4")
        self.assertEqual(response.status_code, 400)
        self.assertContains(response, "one to three", status_code=400)
        response = self.send(kind="location", latitude="100", longitude="0")
        self.assertEqual(response.status_code, 400)
        self.assertFalse(self.chat.messages.filter(direction=Message.Direction.OUTBOUND).exists())
