import json
import re
from datetime import timedelta

from django.test import RequestFactory, override_settings
from django.urls import reverse
from django.utils import timezone

from accounts.api_auth import api_key_revoke
from accounts.models import ApiKey
from config import api as api_urls
from kernel import memo
from tests.api.helpers import ApiTestCase, key_for


class ApiKeyTests(ApiTestCase):
    def test_it_requires_a_key(self):
        response = self.client.get(reverse("api_chats"))
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.json()["error"]["code"], "not_authenticated")
        self.assertIn("Bearer", response["WWW-Authenticate"])

    def test_it_refuses_an_unknown_key(self):
        response = self.api("get", reverse("api_chats"), secret="pfk_not-a-real-key")
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.json()["error"]["code"], "authentication_failed")

    def test_it_refuses_a_revoked_key_at_once(self):
        secret = key_for(self.org, name="Temporary")
        self.assertEqual(self.api("get", reverse("api_chats"), secret=secret).status_code, 200)
        api_key_revoke(key=ApiKey.objects.get(name="Temporary"))
        self.assertEqual(self.api("get", reverse("api_chats"), secret=secret).status_code, 401)

    def test_a_key_revoked_or_deleted_in_the_admin_stops_at_once(self):
        secret = key_for(self.org, name="Temporary")
        self.assertEqual(self.api("get", reverse("api_chats"), secret=secret).status_code, 200)
        key = ApiKey.objects.get(name="Temporary")
        key.revoked_at = timezone.now()
        key.save()
        self.assertEqual(self.api("get", reverse("api_chats"), secret=secret).status_code, 401)
        other = key_for(self.org, name="Other")
        self.assertEqual(self.api("get", reverse("api_chats"), secret=other).status_code, 200)
        ApiKey.objects.get(name="Other").delete()
        self.assertEqual(self.api("get", reverse("api_chats"), secret=other).status_code, 401)

    def test_it_records_when_a_key_was_last_used(self):
        self.api("get", reverse("api_chats"))
        key = ApiKey.objects.get(organization=self.org, name="Integration")
        self.assertAlmostEqual(key.last_used_at.timestamp(), timezone.now().timestamp(), delta=5)

    def test_last_use_is_written_at_most_once_a_minute_across_processes(self):
        key = ApiKey.objects.get(organization=self.org, name="Integration")
        recent = timezone.now() - timedelta(seconds=20)
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=recent)
        memo.forget_all()  # a process that has not seen the key yet
        self.assertEqual(self.api("get", reverse("api_chats")).status_code, 200)
        key.refresh_from_db()
        self.assertEqual(key.last_used_at, recent)  # another process wrote it 20 s ago

        ApiKey.objects.filter(pk=key.pk).update(last_used_at=recent - timedelta(minutes=1))
        memo.forget_all()
        self.assertEqual(self.api("get", reverse("api_chats")).status_code, 200)
        key.refresh_from_db()
        self.assertAlmostEqual(key.last_used_at.timestamp(), timezone.now().timestamp(), delta=5)

    def test_it_enforces_scopes_per_resource_and_action(self):
        secret = key_for(self.org, scopes=["chats:read"], name="Reader")
        self.assertEqual(self.api("get", reverse("api_chats"), secret=secret).status_code, 200)
        response = self.api(
            "post",
            reverse("api_chat_status", args=[self.other_chat.code]),
            {"status": "resolved"},
            secret=secret,
        )
        self.assertEqual(response.status_code, 403)
        self.assertIn("chats:write", response.json()["error"]["message"])
        self.assertEqual(self.api("get", reverse("api_contacts"), secret=secret).status_code, 403)
        self.other_chat.refresh_from_db()
        self.assertEqual(self.other_chat.status, "open")

    def test_write_scope_implies_read(self):
        secret = key_for(self.org, scopes=["contacts:write"], name="Writer")
        self.assertEqual(self.api("get", reverse("api_contacts"), secret=secret).status_code, 200)

    def test_the_secret_is_stored_only_as_a_hash(self):
        key = ApiKey.objects.get(organization=self.org, name="Integration")
        self.assertNotIn(self.secret, (key.key_hash, key.prefix))
        self.assertTrue(self.secret.startswith(key.prefix))

    def test_session_members_use_their_role(self):
        self.login(self.agent)
        chats = self.client.get(reverse("api_chats")).json()["results"]
        self.assertEqual([c["id"] for c in chats], [str(self.agent_chat.code)])
        self.assertEqual(self.client.get(reverse("api_numbers")).status_code, 403)
        self.assertEqual(
            self.client.get(reverse("api_chat", args=[self.other_chat.code])).status_code, 404
        )


class ThrottleTests(ApiTestCase):
    @override_settings(API_THROTTLE_RATES={"send": "2/min"})
    def test_it_limits_sends_per_key_with_retry_after(self):
        url = reverse("api_chat_messages", args=[self.other_chat.code])
        for _ in range(2):
            self.assertEqual(
                self.api("post", url, {"type": "text", "text": {"body": "x"}}).status_code, 422
            )
        response = self.api("post", url, {"type": "text", "text": {"body": "x"}})
        self.assertEqual(response.status_code, 429)
        self.assertEqual(response.json()["error"]["code"], "throttled")
        self.assertGreater(int(response["Retry-After"]), 0)
        # Reads are another class; another key has its own budget.
        self.assertEqual(self.api("get", reverse("api_chats")).status_code, 200)
        other = key_for(self.org, name="Other")
        self.assertEqual(
            self.api(
                "post", url, {"type": "text", "text": {"body": "x"}}, secret=other
            ).status_code,
            422,
        )

    def test_it_slows_down_an_address_after_ten_bad_keys(self):
        for _ in range(10):
            self.assertEqual(
                self.api("get", reverse("api_chats"), secret="pfk_guess").status_code, 401
            )
        response = self.api("get", reverse("api_chats"), secret="pfk_guess")
        self.assertEqual(response.status_code, 429)
        self.assertGreater(int(response["Retry-After"]), 0)
        # A valid key from the same address (e.g. behind the same NAT) still works.
        self.assertEqual(self.api("get", reverse("api_chats")).status_code, 200)


class ErrorShapeTests(ApiTestCase):
    def assertError(self, response, status, code):
        self.assertEqual(response.status_code, status, response.content)
        error = response.json()["error"]
        self.assertEqual(error["code"], code)
        self.assertTrue(error["message"])
        self.assertIn("details", error)

    def test_unknown_objects_are_404(self):
        self.assertError(
            self.api("get", reverse("api_chat", args=[self.secret_chat.code])), 404, "not_found"
        )

    def test_invalid_fields_are_400_with_details(self):
        response = self.api(
            "post", reverse("api_chat_status", args=[self.other_chat.code]), {"status": "gone"}
        )
        self.assertError(response, 400, "invalid")
        self.assertIn("status", response.json()["error"]["details"])

    def test_a_bad_cursor_is_400(self):
        self.assertError(self.api("get", reverse("api_chats"), {"cursor": "%%%"}), 400, "invalid")

    def test_wrong_method_is_405(self):
        self.assertError(self.api("get", reverse("api_messages_send")), 405, "method_not_allowed")

    def test_a_body_over_the_limit_is_413(self):
        response = self.client.post(
            reverse("api_contacts"),
            data="x" * (1024 * 1024 + 1),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {self.secret}",
        )
        self.assertError(response, 413, "payload_too_large")

    def test_a_malformed_id_is_a_json_404(self):
        for method in ("get", "post", "delete"):
            for path in ("/api/v1/chats/not-a-uuid/", "/api/v1/chats/a%0Ab/opt-in/"):
                response = getattr(self.client, method)(
                    path, HTTP_AUTHORIZATION=f"Bearer {self.secret}"
                )
                with self.subTest(method=method, path=path):
                    self.assertError(response, 404, "not_found")
        self.assertError(self.client.get("/api/v1/no-such-thing/"), 404, "not_found")
        # Outside /api/ a missing page is still Django's.
        self.assertNotIn("json", self.client.get("/no-such-page/")["Content-Type"])

    def test_djangos_own_errors_under_api_are_json(self):
        """What Django answers before or after our views (a crash, a suspicious request)."""
        for handler, status, code in (
            (api_urls.server_error, 500, "server_error"),
            (api_urls.bad_request, 400, "bad_request"),
            (api_urls.permission_denied, 403, "permission_denied"),
        ):
            args = [] if status == 500 else [Exception()]
            response = handler(RequestFactory().post("/api/v1/messages/"), *args)
            with self.subTest(status=status):
                self.assertEqual(response.status_code, status)
                self.assertEqual(json.loads(response.content)["error"]["code"], code)
        page = api_urls.server_error(RequestFactory().get("/inbox/"))
        self.assertNotIn("json", page["Content-Type"])

    def test_a_body_that_is_not_json_is_415(self):
        response = self.client.post(
            reverse("api_contact_import"),
            data="--x--\r\n",
            content_type="multipart/form-data; boundary=x",
            HTTP_AUTHORIZATION=f"Bearer {self.secret}",
        )
        self.assertError(response, 415, "unsupported_media_type")

    def test_values_must_have_the_json_type_of_the_schema(self):
        chat_ai = reverse("api_chat_ai", args=[self.other_chat.code])
        response = self.api("post", chat_ai, {"enabled": 0})
        self.assertError(response, 400, "invalid")
        self.assertEqual(set(response.json()["error"]["details"]), {"enabled"})
        opt_in = reverse("api_contact_opt_in", args=[self.other_chat.contact.code])
        self.assertError(self.api("post", opt_in, {"detail": 0}), 400, "invalid")
        self.assertEqual(self.api("post", chat_ai, {"enabled": False}).status_code, 200)

    def test_unknown_fields_are_refused_not_ignored(self):
        url = reverse("api_chat_status", args=[self.other_chat.code])
        response = self.api("post", url, {"status": "resolved", "statuss": "open"})
        self.assertError(response, 400, "invalid")
        self.assertEqual(response.json()["error"]["details"], {"statuss": ["Unknown field."]})

    def test_a_blank_query_parameter_is_refused(self):
        response = self.api("get", reverse("api_reports_summary"), {"start": ""})
        self.assertError(response, 400, "invalid")
        self.assertIn("start", response.json()["error"]["details"])
        self.assertError(self.api("get", reverse("api_chats"), {"status": ""}), 400, "invalid")

    def test_the_page_size_is_checked_as_the_schema_says(self):
        for limit in ("0", "201", "1.5", " 5"):
            with self.subTest(limit=limit):
                response = self.api("get", reverse("api_chats"), {"limit": limit})
                self.assertError(response, 400, "invalid")
        self.assertEqual(self.api("get", reverse("api_chats"), {"limit": "200"}).status_code, 200)

    def test_a_well_formed_cursor_we_never_issued_is_404(self):
        response = self.api("get", reverse("api_chats"), {"cursor": "AAAA"})
        self.assertError(response, 404, "unknown_cursor")

    def test_times_are_iso_8601_utc(self):
        chat = self.api("get", reverse("api_chat", args=[self.other_chat.code])).json()
        self.assertTrue(chat["created_at"].endswith("Z"), chat["created_at"])


class DocsTests(ApiTestCase):
    def test_the_schema_and_docs_are_served_without_a_cdn(self):
        schema = self.client.get(reverse("api_schema"), {"format": "json"})
        self.assertEqual(schema.status_code, 200)
        self.assertIn("/api/v1/chats/{code}/messages/", schema.json()["paths"])
        page = self.client.get(reverse("api_docs")).content.decode()
        # Every file the page loads is ours, and no CDN host is named (a bare "cdn" may occur
        # in the page's random CSRF token).
        loaded = re.findall(r'(?:src|href)="([^"]*)"', page)
        self.assertTrue(loaded)
        self.assertEqual([url for url in loaded if not url.startswith("/api/docs/")], [])
        self.assertNotRegex(page.lower(), r"cdn\.|unpkg|jsdelivr|cdnjs")
        asset = self.client.get(reverse("api_docs_asset", args=["swagger-ui-bundle.js"]))
        self.assertEqual(asset.status_code, 200)

    def test_the_schema_documents_every_answer(self):
        schema = self.client.get(reverse("api_schema"), {"format": "json"}).json()
        chats = schema["paths"]["/api/v1/chats/"]["get"]
        self.assertLessEqual({"400", "401", "403", "404", "429"}, set(chats["responses"]))
        self.assertIn("Retry-After", chats["responses"]["429"]["headers"])
        limit = next(p for p in chats["parameters"] if p["name"] == "limit")["schema"]
        self.assertEqual((limit["minimum"], limit["maximum"]), (1, 200))
        upsert = schema["paths"]["/api/v1/contacts/upsert/"]["post"]
        self.assertLessEqual({"400", "413", "415", "429"}, set(upsert["responses"]))
        self.assertEqual(list(upsert["requestBody"]["content"]), ["application/json"])
        summary = schema["paths"]["/api/v1/reports/summary/"]["get"]
        start = next(p for p in summary["parameters"] if p["name"] == "start")["schema"]
        self.assertEqual(start["format"], "date")
        # A create links to what can be done with what it created (stateful clients, tests).
        created = schema["paths"]["/api/v1/contacts/"]["post"]["responses"]["201"]["links"]
        self.assertEqual(created["contacts_retrieve"]["parameters"], {"code": "$response.body#/id"})


class ContentNegotiationTests(ApiTestCase):
    """JSON for what integrators send, and DRF's answers for anything else."""

    def chat_url(self):
        return reverse("api_chat", args=[self.other_chat.code])

    def test_json_whatever_an_integrator_accepts(self):
        for accept in (None, "*/*", "application/json"):
            extra = {"HTTP_ACCEPT": accept} if accept else {}
            response = self.api("get", self.chat_url(), **extra)
            self.assertEqual(response.status_code, 200, accept)
            self.assertEqual(response["Content-Type"], "application/json", accept)
            self.assertEqual(response.json()["id"], str(self.other_chat.code))

    def test_a_type_the_api_cannot_answer_is_refused(self):
        response = self.api("get", self.chat_url(), HTTP_ACCEPT="application/xml")
        self.assertEqual(response.status_code, 406)
        response = self.api("get", self.chat_url(), {"format": "xml"})
        self.assertEqual(response.status_code, 404)  # DRF: an unknown ?format= is not found

    def test_an_explicit_format_or_a_browser_gets_what_drf_gives(self):
        response = self.api("get", self.chat_url(), {"format": "json"})
        self.assertEqual(response["Content-Type"], "application/json")
        response = self.api("get", self.chat_url(), HTTP_ACCEPT="text/html")
        self.assertTrue(response["Content-Type"].startswith("text/html"))
