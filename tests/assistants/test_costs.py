"""What the AI costs: indexing embeddings are recorded, embeddings and transcription have their
own (sane) prices, an organization may set its own per model, and the budget counts it all."""

from decimal import Decimal

from django.urls import reverse

from assistants import services
from assistants.models import AISettings, Assistant, UsageRecord
from tests.assistants.helpers import AssistantTestCase

TEXT = "A limpeza custa R$ 180 e inclui raspagem de tártaro, polimento e aplicação de flúor."


class CostTests(AssistantTestCase):
    def test_indexing_embeddings_are_recorded_at_the_embedding_price(self):
        services.knowledge_add(assistant=self.assistant, kind="text", title="Limpeza", text=TEXT)
        record = UsageRecord.objects.get(assistant=self.assistant, kind="embedding")
        self.assertEqual(record.model, "text-embedding-3-small")
        self.assertGreater(record.tokens_in, 10)
        self.assertEqual(record.cost, Decimal(record.tokens_in) * Decimal("0.02") / 1_000_000)

    def test_default_prices_per_kind(self):
        million = 1_000_000
        self.assertEqual(
            services.estimate_cost("text-embedding-3-small", million, 0, kind="embedding"),
            Decimal("0.02"),
        )
        self.assertEqual(
            services.estimate_cost("some-local-embedder", million, 0, kind="embedding"),
            Decimal("0.02"),
        )
        self.assertEqual(
            services.estimate_cost("whisper-1", 0, 0, kind="transcription", minutes=10),
            Decimal("0.06"),
        )
        self.assertEqual(services.estimate_cost("gpt-4o-mini", million, million), Decimal("0.75"))

    def test_the_organizations_own_prices_win_and_the_budget_counts_indexing(self):
        self.login(self.admin)
        response = self.client.post(
            reverse("ai_settings"),
            {
                "base_url": self.stub.base_url, "embedding_model": "text-embedding-3-small",
                "transcription_model": "whisper-1", "timeout_seconds": "5",
                "prices": "gpt-4o-mini = 1000, 2000\ntext-embedding-3-small = 5000",
            },
        )  # fmt: skip
        self.assertEqual(response.status_code, 302)
        config = AISettings.objects.get(organization=self.org)
        self.assertEqual(
            config.prices, {"gpt-4o-mini": [1000.0, 2000.0], "text-embedding-3-small": [5000.0]}
        )
        Assistant.objects.filter(pk=self.assistant.pk).update(monthly_budget=Decimal("0.05"))
        self.assistant.refresh_from_db()
        services.knowledge_add(assistant=self.assistant, kind="text", title="Limpeza", text=TEXT)
        record = UsageRecord.objects.get(assistant=self.assistant, kind="embedding")
        self.assertEqual(record.cost, Decimal(record.tokens_in) * 5000 / 1_000_000)
        self.assertTrue(services.budget_exceeded(self.assistant))

    def test_a_bad_price_line_is_a_form_error(self):
        self.login(self.admin)
        response = self.client.post(
            reverse("ai_settings"),
            {
                "base_url": self.stub.base_url, "embedding_model": "e",
                "transcription_model": "t", "timeout_seconds": "5",
                "prices": "gpt-4o-mini = cheap",
            },
        )  # fmt: skip
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Line 1")

    def test_a_reply_is_priced_with_the_organizations_prices(self):
        AISettings.objects.filter(organization=self.org).update(prices={"gpt-4o-mini": [1000, 0]})
        services.prices_changed(self.org.pk)
        chat = self.ai_chat()
        self.stub.script({"content": "Olá!"})
        self.receive("oi, tudo bem?")
        record = UsageRecord.objects.get(assistant=self.assistant, kind="reply")
        self.assertEqual(record.cost, Decimal(record.tokens_in) * 1000 / 1_000_000)
        self.assertTrue(chat.pk)
