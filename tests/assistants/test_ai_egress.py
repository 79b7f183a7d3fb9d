"""Where AI requests may go: the platform's key only to the platform's server, and an
organization's own server only at a public address (or one the operator named), checked when
the settings are saved and again on every request. Real local OpenAI-compatible listeners."""

from django.test import override_settings
from django.urls import reverse

from assistants.models import AISettings
from tests.assistants.helpers import AssistantTestCase
from tests.assistants.openai_stub import OpenAIStub

PLATFORM_KEY = "sk-platform-9f3a1c"


class AIEgressTestCase(AssistantTestCase):
    """Alice's clinic; a second listener plays the platform's own model server."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.platform = OpenAIStub().start()
        cls._platform_settings = override_settings(
            OPENAI_API_KEY=PLATFORM_KEY,
            OPENAI_BASE_URL=cls.platform.base_url,
            EGRESS_ALLOW_PRIVATE=False,  # both listeners are on 127.0.0.1
        )
        cls._platform_settings.enable()

    @classmethod
    def tearDownClass(cls):
        cls._platform_settings.disable()
        cls.platform.stop()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        for stub in (self.stub, self.platform):
            stub.requests.clear()
            stub.authorizations.clear()
        self.login(self.admin)

    def play(self, text="Quanto custa a limpeza?"):
        url = reverse("assistant_playground", args=[self.assistant.code])
        return self.client.post(url, {"text": text, "history": "[]"}, HTTP_HX_REQUEST="true")

    def save_settings(self, **fields):
        data = {"base_url": "", "api_key": "", "embedding_model": "text-embedding-3-small",
                "transcription_model": "whisper-1", "timeout_seconds": "2", **fields}  # fmt: skip
        return self.client.post(reverse("ai_settings"), data)


class PlatformKeyTests(AIEgressTestCase):
    def test_the_platform_key_never_goes_to_an_organizations_server(self):
        # An owner points the organization at a server they control, with no key of their own.
        AISettings.objects.filter(organization=self.org).update(api_key="")
        response = self.play()
        self.assertContains(response, "offline</span>")  # answered from knowledge, no model
        self.assertNotIn(f"Bearer {PLATFORM_KEY}", self.stub.authorizations)
        self.assertEqual(self.stub.requests, [])
        self.assertEqual(self.platform.requests, [])

    def test_the_organizations_own_key_goes_to_its_own_server(self):
        self.stub.script({"content": "R$ 180,00."})
        with override_settings(AI_PRIVATE_BASE_URLS=[self.stub.base_url]):
            self.assertContains(self.play(), "R$ 180,00.")
        self.assertEqual(set(self.stub.authorizations), {"Bearer sk-test"})
        self.assertEqual(self.platform.requests, [])

    def test_without_a_server_of_its_own_the_platform_key_goes_to_the_platform(self):
        AISettings.objects.filter(organization=self.org).update(api_key="", base_url="")
        self.platform.script({"content": "Resposta da plataforma."})
        self.assertContains(self.play(), "Resposta da plataforma.")
        self.assertEqual(set(self.platform.authorizations), {f"Bearer {PLATFORM_KEY}"})
        self.assertEqual(self.stub.requests, [])

    def test_naming_the_platforms_own_url_uses_the_platform_key(self):
        AISettings.objects.filter(organization=self.org).update(
            api_key="", base_url=self.platform.base_url + "/"
        )
        self.play()
        self.assertEqual(set(self.platform.authorizations), {f"Bearer {PLATFORM_KEY}"})

    def test_the_settings_form_asks_for_a_key_with_a_server_of_its_own(self):
        with override_settings(AI_PRIVATE_BASE_URLS=["http://10.0.0.7:11434/v1"]):
            response = self.save_settings(base_url="http://10.0.0.7:11434/v1", clear_api_key="on")
        self.assertContains(response, "Enter this server&#x27;s API key")
        config = AISettings.objects.get(organization=self.org)
        self.assertEqual((config.api_key, config.base_url), ("sk-test", self.stub.base_url))


class BaseURLTests(AIEgressTestCase):
    def test_the_settings_form_refuses_loopback_and_ipv6_forms_embedding_it(self):
        port = self.stub.base_url.split(":")[2].split("/")[0]
        for url in (
            f"http://127.0.0.1:{port}/v1",
            "http://localhost/v1",
            f"http://[::ffff:127.0.0.1]:{port}/v1",
            "http://[64:ff9b::7f00:1]/v1",
            "http://[2002:7f00:1::1]/v1",
            "http://169.254.169.254/latest",
        ):
            with self.subTest(url=url):
                response = self.save_settings(base_url=url, api_key="sk-mine")
                self.assertContains(response, "private or reserved")
        config = AISettings.objects.get(organization=self.org)
        self.assertEqual((config.api_key, config.base_url), ("sk-test", self.stub.base_url))

    def test_a_saved_url_that_now_resolves_to_loopback_is_refused_when_asked(self):
        port = self.stub.base_url.split(":")[2].split("/")[0]
        for url in (self.stub.base_url, f"http://[::ffff:127.0.0.1]:{port}/v1"):
            with self.subTest(url=url):
                AISettings.objects.filter(organization=self.org).update(base_url=url)
                response = self.play()
                self.assertContains(response, "private or reserved")
        self.assertEqual(self.stub.requests, [])

    def test_a_server_the_operator_named_may_be_on_a_private_network(self):
        with override_settings(AI_PRIVATE_BASE_URLS=[self.stub.base_url]):
            response = self.save_settings(base_url=self.stub.base_url, api_key="sk-mine")
            self.assertEqual(response.status_code, 302)
            self.stub.script({"content": "Servidor próprio."})
            self.assertContains(self.play(), "Servidor próprio.")
        self.assertEqual(set(self.stub.authorizations), {"Bearer sk-mine"})

    def test_the_platforms_own_server_is_trusted_where_it_is(self):
        AISettings.objects.filter(organization=self.org).update(base_url="")
        response = self.save_settings(base_url=self.platform.base_url)
        self.assertEqual(response.status_code, 302)
