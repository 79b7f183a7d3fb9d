from django.test import override_settings
from django.urls import reverse

from assistants import services
from assistants.models import Assistant, AssistantVersion, KnowledgeChunk, UsageRecord
from inbox.models import Message
from tests.api.helpers import ApiTestCase, key_for
from tests.assistants.helpers import AssistantTestCase


class AssistantApiTestCase(ApiTestCase, AssistantTestCase):
    """Alice's clinic with its assistant Sofia (AI on the local OpenAI stub) and a full key."""

    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.foreign_assistant = Assistant(organization=cls.other_org, name="Bob's Secret Bot")
        services.assistant_save(assistant=cls.foreign_assistant)

    def add_source(self, **data):
        url = reverse("api_assistant_sources", args=[self.assistant.code])
        return self.api("post", url, data)


class AssistantReadTests(AssistantApiTestCase):
    def test_it_lists_the_organizations_assistants(self):
        response = self.api("get", reverse("api_assistants"))
        self.assertEqual(response.status_code, 200)
        (sofia,) = response.json()["results"]
        self.assertEqual((sofia["id"], sofia["name"]), (str(self.assistant.code), "Sofia"))
        self.assertEqual([n["id"] for n in sofia["numbers"]], [str(self.number.code)])
        self.assertEqual((sofia["version"], sofia["source_count"]), (1, 0))
        self.assertNotIn("Bob's Secret Bot", response.content.decode())
        inactive = self.api("get", reverse("api_assistants"), {"is_active": "false"})
        self.assertEqual(inactive.json()["results"], [])

    def test_it_pages_with_a_cursor(self):
        for name in ("Ana", "Bia"):
            services.assistant_save(assistant=Assistant(organization=self.org, name=name))
        first = self.api("get", reverse("api_assistants"), {"limit": 2}).json()
        self.assertEqual([a["name"] for a in first["results"]], ["Ana", "Bia"])
        second = self.client.get(first["next"], HTTP_AUTHORIZATION=f"Bearer {self.secret}").json()
        self.assertEqual([a["name"] for a in second["results"]], ["Sofia"])
        self.assertIsNone(second["next"])

    def test_another_organizations_assistant_is_404(self):
        url = reverse("api_assistant", args=[self.foreign_assistant.code])
        self.assertEqual(self.api("get", url).status_code, 404)
        response = self.api("patch", url, {"instructions": "pwned"})
        self.assertEqual(response.status_code, 404)
        self.foreign_assistant.refresh_from_db()
        self.assertEqual(self.foreign_assistant.instructions, "")


class AssistantUpdateTests(AssistantApiTestCase):
    def test_it_updates_the_instructions_as_a_new_version(self):
        url = reverse("api_assistant", args=[self.assistant.code])
        response = self.api(
            "patch",
            url,
            {"instructions": "Offer the first visit for free.", "handoff_keywords": ["humano"]},
        )
        self.assertEqual(response.status_code, 200, response.content)
        body = response.json()
        self.assertEqual(body["instructions"], "Offer the first visit for free.")
        self.assertEqual((body["version"], body["handoff_keywords"]), (2, ["humano"]))
        self.assertEqual(body["name"], "Sofia")  # untouched fields stay
        version = AssistantVersion.objects.get(assistant=self.assistant, number=2)
        self.assertEqual(version.snapshot["instructions"], "Offer the first visit for free.")
        # The next answer uses the new instructions.
        self.api(
            "post", reverse("api_assistant_ask", args=[self.assistant.code]), {"question": "oi"}
        )
        system = self.stub.chat_requests()[-1]["messages"][0]["content"]
        self.assertIn("Offer the first visit for free.", system)

    def test_it_rejects_bad_fields(self):
        url = reverse("api_assistant", args=[self.assistant.code])
        response = self.api("patch", url, {"tone": "sarcastic", "name": ""})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(set(response.json()["error"]["details"]), {"tone", "name"})

    def test_a_read_key_cannot_change_it(self):
        secret = key_for(self.org, scopes=["assistants:read"], name="Reader")
        url = reverse("api_assistant", args=[self.assistant.code])
        self.assertEqual(self.api("get", url, secret=secret).status_code, 200)
        response = self.api("patch", url, {"instructions": "x"}, secret=secret)
        self.assertEqual(response.status_code, 403)
        self.assertIn("assistants:write", response.json()["error"]["message"])
        self.assertEqual(self.api("get", url, secret=key_for(self.org, scopes=[])).status_code, 403)

    def test_session_members_follow_the_role_matrix(self):
        url = reverse("api_assistant", args=[self.assistant.code])
        self.login(self.operator)  # assistants: view only
        self.assertEqual(self.client.get(url).status_code, 200)
        patch = self.client.patch(url, '{"name": "X"}', content_type="application/json")
        self.assertEqual(patch.status_code, 403)
        self.login(self.agent)  # no assistants section
        self.assertEqual(self.client.get(url).status_code, 403)


class KnowledgeSourceTests(AssistantApiTestCase):
    def test_it_adds_pasted_text_and_answers_from_it(self):
        response = self.add_source(
            kind="text", title="Parking", text="Free parking for patients at Rua das Flores 120."
        )
        self.assertEqual(response.status_code, 201, response.content)
        source = response.json()
        self.assertEqual((source["kind"], source["title"]), ("text", "Parking"))
        self.assertGreaterEqual(source["chunk_count"], 1)
        self.assertTrue(source["embedded"])
        listing = self.api("get", reverse("api_assistant_sources", args=[self.assistant.code]))
        self.assertEqual([s["id"] for s in listing.json()["results"]], [source["id"]])

        answer = self.api(
            "post",
            reverse("api_assistant_ask", args=[self.assistant.code]),
            {"question": "Is there parking for patients?"},
        ).json()
        self.assertEqual(answer["sources"][0]["id"], source["id"])
        self.assertEqual(answer["sources"][0]["title"], "Parking")
        passages = self.stub.chat_requests()[-1]["messages"][1]["content"]
        self.assertIn("Rua das Flores 120", passages)

    def test_it_adds_questions_and_answers_as_pairs_or_lines(self):
        pairs = self.add_source(
            kind="faq",
            faq=[{"question": "When are you open?", "answer": "Monday to Friday, 8 to 18."}],
        )
        self.assertEqual(pairs.status_code, 201, pairs.content)
        self.assertEqual(pairs.json()["faq"][0]["answer"], "Monday to Friday, 8 to 18.")
        lines = self.add_source(kind="faq", text="Q: Do you take cards?\nA: Yes, all of them.")
        self.assertEqual(lines.status_code, 201, lines.content)
        self.assertEqual(
            lines.json()["faq"], [{"question": "Do you take cards?", "answer": "Yes, all of them."}]
        )

    def test_it_explains_what_is_missing(self):
        for data, field in (
            ({"kind": "faq", "text": "no questions here"}, "faq"),
            ({"kind": "text", "text": "   "}, "text"),
            ({"kind": "url", "text": "Page text"}, "url"),
            ({"kind": "file", "text": "x"}, "kind"),
        ):
            response = self.add_source(**data)
            with self.subTest(data=data):
                self.assertEqual(response.status_code, 400)
                self.assertIn(field, response.json()["error"]["details"])
        self.assertFalse(self.assistant.sources.exists())

    def test_it_removes_a_source_and_stops_using_it(self):
        source = self.add_source(kind="text", title="Parking", text="Free parking at the door.")
        url = reverse("api_assistant_source", args=[self.assistant.code, source.json()["id"]])
        self.assertEqual(self.api("get", url).json()["title"], "Parking")
        self.assertEqual(self.api("delete", url).status_code, 204)
        self.assertEqual(self.api("get", url).status_code, 404)
        self.assertFalse(KnowledgeChunk.objects.filter(assistant=self.assistant).exists())
        answer = self.api(
            "post",
            reverse("api_assistant_ask", args=[self.assistant.code]),
            {"question": "parking?"},
        ).json()
        self.assertEqual(answer["sources"], [])

    def test_a_source_of_another_assistant_is_404(self):
        source = services.knowledge_add(
            assistant=self.foreign_assistant, kind="text", title="Bob", text="segredo-do-bob"
        )
        url = reverse("api_assistant_source", args=[self.assistant.code, source.code])
        self.assertEqual(self.api("delete", url).status_code, 404)
        self.assertTrue(type(source).objects.filter(pk=source.pk).exists())


class AskTests(AssistantApiTestCase):
    def url(self):
        return reverse("api_assistant_ask", args=[self.assistant.code])

    def test_it_answers_with_the_model_and_sends_nothing_to_customers(self):
        messages = Message.objects.count()
        self.stub.script({"content": "We open at 8:00."})
        response = self.api(
            "post",
            self.url(),
            {
                "question": "And on Saturdays?",
                "history": [
                    {"role": "user", "content": "When do you open?"},
                    {"role": "assistant", "content": "Monday to Friday."},
                ],
            },
        )
        self.assertEqual(response.status_code, 200, response.content)
        body = response.json()
        self.assertEqual(
            (body["answer"], body["handoff"], body["version"]), ("We open at 8:00.", None, 1)
        )
        self.assertFalse(body["offline"])
        sent = self.stub.chat_requests()[-1]["messages"]
        self.assertEqual(
            [m["content"] for m in sent if m["role"] in ("user", "assistant")],
            ["When do you open?", "Monday to Friday.", "And on Saturdays?"],
        )
        self.assertEqual(Message.objects.count(), messages)
        self.assertTrue(
            UsageRecord.objects.filter(
                assistant=self.assistant, kind=UsageRecord.Kind.PLAYGROUND
            ).exists()
        )

    def test_a_handoff_rule_answers_with_the_handoff_message(self):
        body = self.api("post", self.url(), {"question": "quero falar com um atendente"}).json()
        self.assertIn("atendente", body["handoff"]["reason"])
        self.assertEqual(body["answer"], self.assistant.handoff_message)
        self.assertEqual(self.stub.chat_requests(), [])  # the rule fires before the model

    def test_a_failing_model_hands_off_instead_of_erroring(self):
        self.stub.script({"status": 500, "error": "boom"}, {"status": 500, "error": "boom"})
        response = self.api("post", self.url(), {"question": "hello"})
        self.assertEqual(response.status_code, 200)
        self.assertIn("failed", response.json()["handoff"]["reason"])

    def test_it_needs_a_question(self):
        response = self.api("post", self.url(), {"history": [{"role": "system", "content": "x"}]})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(set(response.json()["error"]["details"]), {"question", "history"})

    def test_read_scope_is_enough_and_operators_may_ask(self):
        secret = key_for(self.org, scopes=["assistants:read"], name="Reader")
        self.assertEqual(
            self.api("post", self.url(), {"question": "oi"}, secret=secret).status_code, 200
        )
        self.login(self.operator)
        response = self.client.post(
            self.url(), '{"question": "oi"}', content_type="application/json"
        )
        self.assertEqual(response.status_code, 200)

    @override_settings(API_THROTTLE_RATES={"ask": "2/min"})
    def test_questions_are_rate_limited_per_key(self):
        for _ in range(2):
            self.assertEqual(self.api("post", self.url(), {"question": "oi"}).status_code, 200)
        response = self.api("post", self.url(), {"question": "oi"})
        self.assertEqual(response.status_code, 429)
        self.assertGreater(int(response["Retry-After"]), 0)
        self.assertEqual(self.api("get", reverse("api_assistants")).status_code, 200)
