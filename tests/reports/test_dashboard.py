import csv
import io
import zoneinfo
from datetime import date, datetime, timedelta

from django.core.management import call_command
from django.urls import reverse
from openpyxl import load_workbook

from inbox.models import Message
from reports import selectors, stats
from reports.models import DailyStat
from reports.selectors import Period
from tests.base import BaseTestCase, make_chat

SP = zoneinfo.ZoneInfo("America/Sao_Paulo")
DAY = date(2026, 3, 10)  # a Tuesday
PERIOD = {"period": "custom", "start": "2026-03-10", "end": "2026-03-10"}


def at(day, hour, minute=0, second=0):
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=SP)


class DashboardTests(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.org.time_zone = "America/Sao_Paulo"
        cls.org.save()
        chats = {
            key: make_chat(cls.org, cls.number, f"55119880000{i}", f"Known {key}")
            for i, key in enumerate("ABCDE")
        }

        def message(chat, when, direction="in", author="customer", user=None, **extra):
            return Message.objects.create(
                organization=cls.org, chat=chats[chat], number=cls.number, direction=direction,
                text="x", author_type=author, author_user=user, timestamp=when, **extra,
            )  # fmt: skip

        def resolve(chat, when, user=None):
            message(
                chat, when, "int", "user" if user else "system", user, type="activity",
                content={"type": "activity", "activity": {"kind": "status", "status": "resolved"}},
            )  # fmt: skip

        # A: 23:30 local is already the next day in UTC; it still counts on DAY.
        message("A", at(DAY, 23, 30))
        message("A", at(DAY, 23, 30, 40), "out", "user", cls.agent)
        # B: answered by the assistant in 10 s and resolved without a person.
        message("B", at(DAY, 10))
        message("B", at(DAY, 10, 0, 10), "out", "assistant")
        resolve("B", at(DAY, 10, 5))
        # C: answered by the manager in 2 min, resolved by her after 30 min.
        message("C", at(DAY, 14))
        message("C", at(DAY, 14, 2), "out", "user", cls.manager)
        resolve("C", at(DAY, 14, 30), cls.manager)
        # D: nobody answered.
        message("D", at(DAY, 9))
        # E: the day before, answered in 60 s (the previous period).
        message("E", at(DAY - timedelta(days=1), 8))
        message("E", at(DAY - timedelta(days=1), 8, 1), "out", "user", cls.agent)
        # Another organization's message the same day never counts.
        Message.objects.create(
            organization=cls.other_org, chat=cls.secret_chat, number=cls.other_number,
            direction="in", text="segredo", author_type="customer", timestamp=at(DAY, 11),
        )  # fmt: skip
        stats.stats_rebuild(cls.org, first=DAY - timedelta(days=1), last=DAY)

    def test_it_computes_first_response_in_the_organizations_time_zone(self):
        data = selectors.report(self.org, Period(DAY, DAY))
        current = data["current"]
        self.assertEqual(current.conversations, 4)
        self.assertEqual((current.messages_in, current.messages_out), (4, 3))
        self.assertEqual(current.first_response, [10, 40, 120])
        self.assertEqual(current.frt_median, 40)
        self.assertAlmostEqual(current.frt_p90, 104)
        self.assertEqual(current.resolution, [300, 1800])
        self.assertEqual((current.resolved, current.resolved_by_ai), (2, 1))
        self.assertEqual(data["heat"][1][23], 1)  # Tuesday, 23 h local
        self.assertEqual([count for _label, count in data["histogram"]], [0, 1, 2, 0, 0, 0])

    def test_it_compares_with_the_previous_period(self):
        data = selectors.report(self.org, Period(DAY, DAY))
        self.assertEqual(data["previous"].conversations, 1)
        self.assertEqual(data["previous"].frt_median, 60)

    def test_it_shows_cards_charts_and_agents(self):
        self.login(self.manager)
        response = self.client.get(reverse("reports_dashboard"), PERIOD)
        self.assertEqual(response.status_code, 200)
        cards = {card["label"]: card for card in response.context["cards"]}
        self.assertEqual(cards["Conversations"]["value"], "4")
        self.assertEqual(cards["Conversations"]["previous"], "1")
        self.assertEqual(cards["Conversations"]["delta"]["text"], "+300%")
        self.assertEqual(cards["First response (median)"]["value"], "40 s")
        self.assertEqual(cards["Resolved by AI alone"]["value"], "50.0%")
        self.assertContains(response, "<polyline", count=2)
        self.assertContains(response, "Ana Agent")
        self.assertContains(response, "Mara Manager")
        names = [agent["name"] for agent in response.context["agents"]]
        self.assertEqual(names[-1], None)  # AI or unanswered, last

    def test_it_renders_only_the_report_for_htmx(self):
        self.login(self.admin)
        response = self.client.get(reverse("reports_dashboard"), PERIOD, HTTP_HX_REQUEST="true")
        self.assertContains(response, 'id="report"')
        self.assertNotContains(response, "<html")

    def test_it_rejects_a_custom_period_without_dates(self):
        self.login(self.admin)
        response = self.client.get(reverse("reports_dashboard"), {"period": "custom"})
        self.assertContains(response, "Choose both dates")

    def test_it_exports_csv_and_xlsx(self):
        self.login(self.operator)
        url = reverse("report_export")
        response = self.client.get(url, {**PERIOD, "report": "daily", "format": "csv"})
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        self.assertEqual(rows[1][:4], ["2026-03-10", "4", "4", "3"])
        self.assertEqual(rows[1][5], "40")
        response = self.client.get(url, {**PERIOD, "report": "agents", "format": "xlsx"})
        self.assertIn("attachment", response["Content-Disposition"])
        sheet = load_workbook(io.BytesIO(response.content)).active
        agents = {row[0]: row for row in sheet.iter_rows(min_row=2, values_only=True)}
        self.assertEqual(agents["Mara Manager"][1:3], (1, 120))
        self.assertEqual(self.client.get(url, {"report": "nope", "format": "csv"}).status_code, 404)

    def test_it_is_visible_to_every_role_and_not_to_anonymous_users(self):
        for user in self.members.values():
            self.login(user)
            self.assertEqual(self.client.get(reverse("reports_dashboard")).status_code, 200)
        self.client.logout()
        self.assertEqual(self.client.get(reverse("reports_dashboard")).status_code, 302)

    def test_it_rejects_post(self):
        self.login(self.admin)
        self.assertEqual(self.client.post(reverse("reports_dashboard")).status_code, 405)

    def test_it_rebuilds_with_the_management_command(self):
        DailyStat.objects.all().delete()
        call_command(
            "rebuild_stats",
            "--since",
            "2026-03-10",
            "--organization",
            self.org.slug,
            stdout=io.StringIO(),
        )
        self.assertEqual(selectors.report(self.org, Period(DAY, DAY))["current"].conversations, 4)
        self.assertFalse(DailyStat.objects.filter(organization=self.other_org).exists())
