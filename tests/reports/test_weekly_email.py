"""The weekly report email: what it says, when it goes (the organization's time zone), to whom
(members only), once per week even with two workers at once, and the settings page with its
"send now to me" button."""

import io
import threading
import unittest
import zoneinfo
from datetime import date, datetime, timedelta

from django.core import mail
from django.db import connection
from django.test import TransactionTestCase
from django.urls import reverse
from openpyxl import load_workbook

from accounts.models import Membership, Role
from inbox.models import Message
from reports import weekly
from reports.models import AuditEvent, ReportSettings, WeeklyReportDelivery
from tests.base import BaseTestCase, make_chat, make_org, make_user

SP = zoneinfo.ZoneInfo("America/Sao_Paulo")
MONDAY = date(2026, 3, 16)


def local(day, hour, minute=0):
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SP)


class WeeklyEmailTests(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.org.time_zone = "America/Sao_Paulo"
        cls.org.save()
        cls.config = ReportSettings.objects.create(
            organization=cls.org, weekly_enabled=True, weekly_weekday=0, weekly_hour=8
        )
        cls.config.weekly_recipients.set([cls.manager, cls.agent])
        # Three conversations in the week before MONDAY, one in the week before that.
        for i, day in enumerate([MONDAY - timedelta(days=6)] * 3 + [MONDAY - timedelta(days=13)]):
            chat = make_chat(cls.org, cls.number, f"55119440000{i}", f"Week {i}")
            Message.objects.filter(chat=chat).update(timestamp=local(day, 10 + i))

    def send(self, when):
        return weekly.weekly_reports_send(now=when)

    def test_it_summarises_the_last_7_days_against_the_7_before(self):
        self.assertEqual(self.send(local(MONDAY, 8, 5)), 1)
        self.assertEqual(
            sorted(m.to[0] for m in mail.outbox), [self.agent.email, self.manager.email]
        )
        email = mail.outbox[0]
        self.assertEqual(len(email.to), 1)  # nobody sees the other recipients
        self.assertIn("Weekly report: Clínica Alice, 2026-03-09 – 2026-03-15", email.subject)
        self.assertIn("- Conversations: 3 (before: 1, +200%)", email.body)
        html, mime = email.alternatives[0]
        self.assertEqual(mime, "text/html")
        self.assertIn("Weekly report of Clínica Alice", html)
        self.assertIn("+200%", html)
        name, content, mime = email.attachments[0]
        self.assertEqual(name, "clinica-alice-report-2026-03-09-2026-03-15.xlsx")
        book = load_workbook(io.BytesIO(content))
        self.assertEqual(book.sheetnames, ["Days", "Team", "AI assistants", "Customer journey"])
        days = list(book["Days"].iter_rows(min_row=2, values_only=True))
        self.assertEqual([row[0] for row in days][0], "2026-03-09")
        self.assertEqual(sum(row[1] for row in days), 3)
        delivery = WeeklyReportDelivery.objects.get()
        self.assertEqual(delivery.status, "sent")
        self.assertEqual(
            (delivery.period_first, delivery.period_last), (date(2026, 3, 9), date(2026, 3, 15))
        )

    def test_it_goes_at_the_chosen_hour_in_the_organizations_time_zone(self):
        self.assertIsNone(weekly.due_date(self.config, local(MONDAY, 7, 59)))
        # 08:00 UTC is 05:00 in São Paulo: not yet.
        utc_eight = datetime(2026, 3, 16, 8, 0, tzinfo=zoneinfo.ZoneInfo("UTC"))
        self.assertIsNone(weekly.due_date(self.config, utc_eight))
        self.assertEqual(weekly.due_date(self.config, local(MONDAY, 8)), MONDAY)
        self.assertEqual(weekly.due_date(self.config, local(MONDAY + timedelta(1), 7, 59)), MONDAY)
        self.assertIsNone(weekly.due_date(self.config, local(MONDAY + timedelta(1), 8)))
        self.assertEqual(self.send(local(MONDAY, 7, 59)), 0)
        self.assertEqual(mail.outbox, [])

    def test_it_sends_each_week_once(self):
        self.send(local(MONDAY, 8))
        self.send(local(MONDAY, 8, 10))
        self.send(local(MONDAY, 14))
        self.assertEqual(len(mail.outbox), 2)
        self.send(local(MONDAY + timedelta(days=7), 8))
        self.assertEqual(len(mail.outbox), 4)
        self.assertEqual(WeeklyReportDelivery.objects.count(), 2)

    def test_it_sends_only_to_current_members_of_the_organization(self):
        self.config.weekly_recipients.add(self.outsider)  # e.g. saved by a tampered request
        Membership.objects.filter(user=self.agent, organization=self.org).delete()
        self.send(local(MONDAY, 8))
        self.assertEqual([m.to for m in mail.outbox], [[self.manager.email]])

    def test_nothing_is_sent_when_it_is_off(self):
        ReportSettings.objects.filter(pk=self.config.pk).update(weekly_enabled=False)
        self.assertEqual(self.send(local(MONDAY, 8)), 0)
        self.assertEqual(mail.outbox, [])


class ReportSettingsPageTests(BaseTestCase):
    url = reverse("report_settings")

    def post(self, **data):
        defaults = {"weekly_weekday": "4", "weekly_hour": "18", "csat_question": ""}
        return self.client.post(self.url, {**defaults, **data})

    def test_a_manager_chooses_teammates_day_and_hour(self):
        self.login(self.manager)
        response = self.post(
            weekly_enabled="on", weekly_recipients=[self.admin.pk, self.agent.pk],
            csat_enabled="on", csat_question="Como foi?",
        )  # fmt: skip
        self.assertRedirects(response, self.url)
        config = ReportSettings.objects.get(organization=self.org)
        self.assertTrue(config.weekly_enabled and config.csat_enabled)
        self.assertEqual((config.weekly_weekday, config.weekly_hour), (4, 18))
        self.assertEqual(set(config.weekly_recipients.all()), {self.admin, self.agent})
        self.assertEqual(config.csat_question, "Como foi?")
        event = AuditEvent.objects.get(action="settings_changed", actor=self.manager)
        self.assertIn("weekly_recipients", event.data["report_settings"])

    def test_recipients_must_be_members(self):
        self.login(self.admin)
        response = self.post(weekly_enabled="on", weekly_recipients=[self.outsider.pk])
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Select a valid choice")
        self.assertNotContains(response, self.outsider.email)
        response = self.post(weekly_enabled="on")
        self.assertContains(response, "Choose at least one teammate.")
        self.assertFalse(ReportSettings.objects.get(organization=self.org).weekly_enabled)

    def test_operators_and_agents_read_but_do_not_change(self):
        for user in (self.operator, self.agent):
            self.login(user)
            response = self.client.get(self.url)
            self.assertContains(response, "No weekly email is sent.")
            self.assertNotContains(response, 'name="weekly_hour"')
            self.assertEqual(self.post(weekly_enabled="on").status_code, 403)
        self.client.logout()
        self.assertEqual(self.client.get(self.url).status_code, 302)

    def test_send_now_sends_the_last_7_days_to_me_only(self):
        self.login(self.agent)
        self.assertEqual(self.client.get(reverse("report_send_now")).status_code, 405)
        response = self.client.post(reverse("report_send_now"), follow=True)
        self.assertContains(response, f"was sent to {self.agent.email}")
        self.assertEqual([m.to for m in mail.outbox], [[self.agent.email]])
        self.assertFalse(WeeklyReportDelivery.objects.exists())  # not this week's scheduled one


@unittest.skipUnless(connection.vendor == "postgresql", "two real connections: PostgreSQL")
class TwoWorkersTests(TransactionTestCase):
    def test_two_workers_at_once_send_the_week_once(self):
        organization, _number = make_org("Clínica W", "clinica-w", "555")
        organization.time_zone = "America/Sao_Paulo"
        organization.save()
        users = [make_user(f"w{i}@w.test") for i in range(3)]
        for user in users:
            Membership.objects.create(user=user, organization=organization, role=Role.MANAGER)
        config = ReportSettings.objects.create(
            organization=organization, weekly_enabled=True, weekly_weekday=0, weekly_hour=8
        )
        config.weekly_recipients.set(users)
        barrier = threading.Barrier(2)
        results = []

        def work():
            try:
                mine = ReportSettings.objects.select_related("organization").get(pk=config.pk)
                barrier.wait(5)
                results.append(weekly.weekly_report_deliver(config=mine, day=MONDAY))
            finally:
                connection.close()

        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        self.assertEqual(sorted(result is None for result in results), [False, True])
        self.assertEqual(len(mail.outbox), 3)
        self.assertEqual(WeeklyReportDelivery.objects.get().status, "sent")
