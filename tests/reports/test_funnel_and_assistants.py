"""Per-assistant figures and the customer journey funnel on a small known day, their page
sections and exports, and that another organization's assistants and contacts never count."""

import csv
import io
import zoneinfo
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.urls import reverse
from openpyxl import load_workbook

from assistants.models import Assistant, UsageRecord
from assistants.services import assistant_save
from inbox.models import Contact, Message
from reports import selectors, stats
from reports.models import CsatResponse, CsatSurvey
from reports.selectors import Period
from tests.base import BaseTestCase, make_chat

SP = zoneinfo.ZoneInfo("America/Sao_Paulo")
DAY = date(2026, 3, 10)
PERIOD = {"period": "custom", "start": "2026-03-10", "end": "2026-03-10"}


def at(hour, minute=0, second=0, day=DAY):
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=SP)


def activity(**data):
    return {"type": "activity", "activity": data}


class FunnelAndAssistantsTests(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        for organization in (cls.org, cls.other_org):
            organization.time_zone = "America/Sao_Paulo"
            organization.save()
        cls.sofia = Assistant.objects.create(organization=cls.org, name="Sofia", instructions="x")
        cls.leo = Assistant.objects.create(organization=cls.org, name="Leo", instructions="x")
        sofia_v = assistant_save(assistant=cls.sofia, user=cls.admin)
        leo_v = assistant_save(assistant=cls.leo, user=cls.admin)
        chats = {
            key: make_chat(cls.org, cls.number, f"55119770000{i}", f"Known {key}")
            for i, key in enumerate("ABCD")
        }

        def message(chat, when, direction="in", author="customer", **extra):
            return Message.objects.create(
                organization=cls.org, chat=chats[chat], number=cls.number, direction=direction,
                text="x", author_type=author, timestamp=when, **extra,
            )  # fmt: skip

        def sofia(chat, when, **extra):
            return message(chat, when, "out", "assistant", author_ref=str(sofia_v.code), **extra)

        # A: Sofia answers in 20 s and the chat is resolved with nobody else writing.
        message("A", at(10))
        sofia("A", at(10, 0, 20))
        resolved_a = message(
            "A", at(10, 10), "int", "system", type="activity",
            content=activity(kind="status", status="resolved"),
        )  # fmt: skip
        # B: Sofia answers in 30 s, hands off; the manager answers and resolves.
        message("B", at(11))
        sofia("B", at(11, 0, 30))
        message(
            "B", at(11, 1), "int", "system", type="activity",
            content=activity(kind="ai", enabled=False, reason="dor"),
        )  # fmt: skip
        sofia("B", at(11, 1, 1))  # the handoff message follows the entry
        message("B", at(11, 5), "out", "user", author_user=cls.manager)
        resolved_b = message(
            "B", at(11, 30), "int", "user", author_user=cls.manager, type="activity",
            content=activity(kind="status", status="resolved"),
        )  # fmt: skip
        # C: Leo answers in 60 s.
        message("C", at(12))
        message("C", at(12, 1), "out", "assistant", author_ref=str(leo_v.code))
        # D: the only customer message of the day is a tap on a survey button.
        message(
            "D", at(15), type="interactive",
            content={"type": "interactive", "interactive": {
                "type": "button_reply", "button_reply": {"id": "csat:x:3", "title": "Great"}}},
        )  # fmt: skip

        for chat, resolution, score, agent, assistant in (
            ("A", resolved_a, 3, None, cls.sofia),
            ("B", resolved_b, 1, cls.manager, None),
        ):
            survey = CsatSurvey.objects.create(
                organization=cls.org, chat=chats[chat], contact=chats[chat].contact,
                resolution=resolution, agent=agent, assistant=assistant,
            )  # fmt: skip
            CsatResponse.objects.create(
                organization=cls.org, survey=survey, chat=chats[chat],
                contact=chats[chat].contact, agent=agent, assistant=assistant, score=score,
                responded_at=resolution.timestamp + timedelta(minutes=2),
            )  # fmt: skip

        for assistant, cost in ((cls.sofia, "0.50"), (cls.leo, "0.25")):
            usage = UsageRecord.objects.create(
                organization=cls.org, assistant=assistant, kind="reply", month="2026-03",
                cost=Decimal(cost),
            )  # fmt: skip
            UsageRecord.objects.filter(pk=usage.pk).update(created_at=at(12))

        # The funnel: five contacts created that day, one the day before.
        stages = ["lead", "contacted", "replied", "customer", "lost"]
        for i, stage in enumerate(stages):
            contact = Contact.objects.create(
                organization=cls.org, wa_id=f"55119660000{i}", phone=f"+55119660000{i}", stage=stage
            )
            Contact.objects.filter(pk=contact.pk).update(created_at=at(9 + i))
        earlier = Contact.objects.create(
            organization=cls.org, wa_id="551196600009", phone="+551196600009", stage="customer"
        )
        Contact.objects.filter(pk=earlier.pk).update(created_at=at(9, day=DAY - timedelta(1)))

        # Bob's clinic: its own assistant, replies, costs and customers, the same day.
        bob = Assistant.objects.create(organization=cls.other_org, name="Bobot", instructions="x")
        bob_v = assistant_save(assistant=bob, user=cls.outsider)
        Message.objects.create(
            organization=cls.other_org, chat=cls.secret_chat, number=cls.other_number,
            direction="in", text="oi", author_type="customer", timestamp=at(10),
        )  # fmt: skip
        Message.objects.create(
            organization=cls.other_org, chat=cls.secret_chat, number=cls.other_number,
            direction="out", text="olá", author_type="assistant", author_ref=str(bob_v.code),
            timestamp=at(10, 0, 5),
        )  # fmt: skip
        usage = UsageRecord.objects.create(
            organization=cls.other_org, assistant=bob, kind="reply", month="2026-03", cost=9
        )
        UsageRecord.objects.filter(pk=usage.pk).update(created_at=at(12))
        secret = Contact.objects.create(
            organization=cls.other_org, wa_id="5511955550000", phone="+5511955550000",
            stage="customer",
        )  # fmt: skip
        Contact.objects.filter(pk=secret.pk).update(created_at=at(10))

        for organization in (cls.org, cls.other_org):
            stats.stats_rebuild(organization, first=DAY, last=DAY)

    def report(self, organization=None):
        return selectors.report(organization or self.org, Period(DAY, DAY))

    def test_it_counts_each_assistants_conversations_resolutions_handoffs_csat_and_cost(self):
        assistants = dict(self.report()["assistants"])
        self.assertEqual(list(assistants), ["Sofia", "Leo"])
        sofia, leo = assistants["Sofia"], assistants["Leo"]
        self.assertEqual((sofia.conversations, sofia.resolved_by_ai, sofia.handoffs), (2, 1, 1))
        self.assertEqual(sofia.frt_median, 25)
        self.assertEqual((sofia.csat_responses, sofia.csat_average), (1, 3))
        self.assertEqual(sofia.ai_cost, Decimal("0.5"))
        self.assertEqual((leo.conversations, leo.resolved_by_ai, leo.handoffs), (1, 0, 0))
        self.assertEqual(
            (leo.frt_median, leo.csat_average, leo.ai_cost), (60, None, Decimal("0.25"))
        )

    def test_it_counts_csat_for_the_team_and_the_organization(self):
        data = self.report()
        self.assertEqual((data["current"].csat_responses, data["current"].csat_average), (2, 2))
        agents = dict(data["agents"])
        self.assertEqual(agents["Mara Manager"].csat_average, 1)
        self.assertEqual(agents[None].csat_average, 3)  # resolved by nobody: the AI's

    def test_a_survey_tap_is_not_a_conversation(self):
        self.assertEqual(self.report()["current"].conversations, 3)  # A, B and C; not D

    def test_the_funnel_counts_contacts_created_in_the_period_by_stage_reached(self):
        self.assertEqual(
            [(str(label), count) for label, count in self.report()["funnel"]],
            [("Leads", 5), ("Engaged", 2), ("Converted", 1)],
        )
        week = selectors.funnel(self.org, Period(DAY - timedelta(days=1), DAY))
        self.assertEqual([count for _label, count in week], [6, 3, 2])

    def test_the_dashboard_shows_the_assistants_table_and_the_funnel_chart(self):
        self.login(self.agent)
        response = self.client.get(reverse("reports_dashboard"), PERIOD)
        self.assertEqual(response.status_code, 200)
        rows = {row["name"]: row for row in response.context["assistants"]}
        self.assertEqual(rows["Sofia"]["frt_median"], "25 s")
        self.assertEqual(rows["Sofia"]["csat"], "3.00 / 3 (1)")
        # US$ 0.25 of AI, shown in the organization's currency (BRL at the default 5.50).
        self.assertEqual(rows["Leo"]["cost"], "R$ 1.38")
        bars = response.context["funnel"]["bars"]
        self.assertEqual(
            [(bar["count"], bar["share"]) for bar in bars][1:], [(2, "40.0%"), (1, "20.0%")]
        )
        self.assertContains(response, "Customer journey")
        self.assertContains(response, "report-funnel")
        self.assertNotContains(response, "Bobot")

    def test_it_exports_assistants_and_funnel_to_csv_and_xlsx(self):
        self.login(self.operator)
        url = reverse("report_export")
        response = self.client.get(url, {**PERIOD, "report": "assistants", "format": "csv"})
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        self.assertEqual(rows[1], ["Sofia", "2", "1", "1", "25", "1", "3.0", "0.5"])
        self.assertEqual(rows[2][0], "Leo")
        self.assertEqual(len(rows), 3)
        response = self.client.get(url, {**PERIOD, "report": "funnel", "format": "xlsx"})
        sheet = load_workbook(io.BytesIO(response.content)).active
        self.assertEqual(
            list(sheet.iter_rows(min_row=2, values_only=True)),
            [("Leads", 5), ("Engaged", 2), ("Converted", 1)],
        )

    def test_another_organization_sees_only_its_own(self):
        data = self.report(self.other_org)
        self.assertEqual([name for name, _f in data["assistants"]], ["Bobot"])
        self.assertEqual(data["assistants"][0][1].ai_cost, Decimal(9))
        self.assertEqual([count for _label, count in data["funnel"]], [1, 1, 1])
        self.login(self.outsider)
        response = self.client.get(
            reverse("report_export"), {**PERIOD, "report": "assistants", "format": "csv"}
        )
        self.assertNotIn("Sofia", response.content.decode("utf-8-sig"))
