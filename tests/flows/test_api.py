"""The flows API (list, read, export, start for a contact) and the flow.completed /
flow.handoff webhook events, delivered to a real local receiver."""

import json

from django.test import override_settings

from flows.models import FlowRun
from inbox.models import Chat, Message
from integrations import outgoing
from tests.api.helpers import key_for
from tests.api.receiver import Receiver
from tests.flows.helpers import FlowTestCase, five_nodes


class FlowApiTests(FlowTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.secret = key_for(cls.org, scopes=["flows:write"])
        cls.read_only = key_for(cls.org, scopes=["flows:read"], name="read")
        cls.foreign = key_for(cls.other_org, scopes=["flows:write"], name="bob")

    def api(self, method, path, data=None, *, secret=None):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {secret or self.secret}"}
        if method == "get":
            return self.client.get(path, **headers)
        with self.captureOnCommitCallbacks(execute=True):
            return self.client.post(
                path, json.dumps(data or {}), content_type="application/json", **headers
            )

    def test_list_read_and_export(self):
        flow = self.published_flow()
        listed = self.api("get", "/api/v1/flows/").json()["results"]
        self.assertEqual([(f["id"], f["published_version"]) for f in listed], [(str(flow.code), 1)])
        detail = self.api("get", f"/api/v1/flows/{flow.code}/").json()
        self.assertEqual(len(detail["definition"]["nodes"]), 5)
        exported = self.api("get", f"/api/v1/flows/{flow.code}/export/").json()
        self.assertEqual((exported["porfin_flow"], exported["name"]), (1, "Agendamento"))
        self.assertEqual(
            self.api("get", f"/api/v1/flows/{flow.code}/", secret=self.foreign).status_code, 404
        )

    def test_start_a_flow_for_a_contact_with_an_open_window(self):
        flow = self.published_flow()
        chat = self.receive("oi").chat  # nobody's: the window opens
        chat = Chat.objects.select_related("contact").get(pk=chat.pk)
        response = self.api(
            "post", f"/api/v1/flows/{flow.code}/start/", {"contact": str(chat.contact.code)}
        )
        self.assertEqual(response.status_code, 202, response.content)
        self.assertEqual(response.json()["status"], "running")  # steps are taken after commit
        self.assertEqual(self.sent(chat)[-1].text, "O que deseja?")
        again = self.api(
            "post", f"/api/v1/flows/{flow.code}/start/", {"contact": str(chat.contact.code)}
        )
        self.assertEqual(again.status_code, 409)
        self.assertIn("Another flow is already running", json.dumps(again.json()))
        refused = self.api(
            "post",
            f"/api/v1/flows/{flow.code}/start/",
            {"contact": str(chat.contact.code)},
            secret=self.read_only,
        )
        self.assertEqual(refused.status_code, 403)

    def test_a_closed_window_is_409_saying_how_to_start_it(self):
        flow = self.published_flow()
        chat = self.receive("oi").chat
        Chat.objects.filter(pk=chat.pk).update(window_expires_at=None)
        response = self.api(
            "post", f"/api/v1/flows/{flow.code}/start/", {"contact": str(chat.contact.code)}
        )
        self.assertEqual(response.status_code, 409)
        self.assertIn(f"flow:{flow.code}", json.dumps(response.json()))

    def test_a_template_button_with_the_flow_payload_starts_it(self):
        flow = self.published_flow()
        message = self.receive(
            message_type="button", content={"payload": f"flow:{flow.code}", "text": "Quero agendar"}
        )
        message.refresh_from_db()
        self.assertEqual(message.handled_by, "flow")
        self.assertEqual(FlowRun.objects.get(chat_id=message.chat_id).trigger, "button")


@override_settings(EGRESS_ALLOW_PRIVATE=True)
class FlowEventTests(FlowTestCase):
    def setUp(self):
        super().setUp()
        self.receiver = Receiver().start()
        self.addCleanup(self.receiver.stop)
        outgoing.subscription_create(
            organization=self.org, url=self.receiver.url, events=["flow.completed", "flow.handoff"]
        )

    def events(self):
        return [json.loads(body) for _headers, body in self.receiver.requests]

    def test_a_completed_run_is_announced_with_its_variables(self):
        self.published_flow()
        chat = self.receive("menu").chat
        self.receive("Limpeza")
        self.receive("maria@example.com")
        (event,) = self.events()
        self.assertEqual(event["type"], "flow.completed")
        self.assertEqual(event["data"]["flow"]["name"], "Agendamento")
        self.assertEqual(event["data"]["run"]["variables"]["menu_choice"], "Limpeza")
        self.assertEqual(event["data"]["chat"]["id"], str(chat.code))

    def test_a_handoff_is_announced(self):
        data = five_nodes()
        data["nodes"].append(
            {"id": "human", "type": "handoff", "props": {"reason": "quer clareamento"}}
        )
        data["edges"][3] = {"from": "menu", "port": "opt2", "to": "human"}
        self.published_flow(data)
        chat = self.receive("menu").chat
        self.receive("Clareamento")
        (event,) = self.events()
        self.assertEqual(
            (event["type"], event["data"]["run"]["outcome"]), ("flow.handoff", "quer clareamento")
        )
        self.assertTrue(
            Message.objects.filter(chat=chat, text__contains="Waiting for a person").exists()
        )
