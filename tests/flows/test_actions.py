"""Action and logic nodes: handoff, webhook (with the outgoing SSRF guard), conditions on
opening hours, tags, AI classification, and triggers outside opening hours."""

import json
import threading
from datetime import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.test import override_settings

from accounts.models import OpeningHours
from flows.models import FlowRun
from inbox.models import Chat, Message
from tests.flows.helpers import FlowTestCase


class JsonServer:
    """A local HTTPS-less endpoint answering JSON, standing in for a clinic's system."""

    def __init__(self, answer: dict):
        self.bodies: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                server.bodies.append(
                    json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                )
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/price"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def chain(*nodes, keyword="go"):
    """start → nodes[0] → nodes[1] … following each node's first port (or the one given)."""
    items = [{"id": "start", "type": "start", "props": {"keywords": keyword}}]
    edges, previous, port = [], "start", "next"
    for node in nodes:
        node = dict(node)
        follow = node.pop("follow", "next")
        items.append(node)
        edges.append({"from": previous, "port": port, "to": node["id"]})
        previous, port = node["id"], follow
    return {"nodes": items, "edges": edges}


class ActionTests(FlowTestCase):
    def test_handoff_turns_the_ai_off_assigns_and_shows_the_chat_waiting(self):
        self.published_flow(
            chain(
                {
                    "id": "human",
                    "type": "handoff",
                    "props": {
                        "text": "Um momento, vou chamar a equipe.",
                        "reason": "quer falar com alguém",
                        "email": "operator@alice.test",
                    },
                }
            )
        )
        chat = self.receive("go").chat
        chat = Chat.objects.get(pk=chat.pk)
        self.assertEqual((chat.assignee, chat.ai_enabled, chat.held_by), (self.operator, False, ""))
        self.assertEqual(self.sent(chat)[-1].text, "Um momento, vou chamar a equipe.")
        run = FlowRun.objects.get(chat=chat)
        self.assertEqual(run.status, FlowRun.Status.HANDED_OFF)
        self.assertTrue(
            Message.objects.filter(
                chat=chat,
                type="activity",
                text__startswith="Waiting for a person (flow Agendamento)",
            ).exists()
        )

    def test_webhook_maps_the_response_into_variables(self):
        server = JsonServer({"price": {"value": "R$ 150"}})
        self.addCleanup(server.stop)
        with override_settings(EGRESS_ALLOW_PRIVATE=True):  # a local test server
            self.published_flow(
                chain(
                    {
                        "id": "ask",
                        "type": "webhook",
                        "follow": "ok",
                        "props": {"url": server.url, "save": "price = price.value"},
                    },
                    {
                        "id": "say",
                        "type": "message",
                        "props": {"text": "A limpeza custa {{vars.price}}."},
                    },
                )
            )
            chat = self.receive("go").chat
        self.assertEqual(self.sent(chat)[-1].text, "A limpeza custa R$ 150.")
        self.assertEqual(server.bodies[0]["contact"]["phone"], "+5511966660000")

    def test_webhook_to_a_private_address_is_refused_by_the_ssrf_guard(self):
        server = JsonServer({"price": "1"})
        self.addCleanup(server.stop)
        self.published_flow(
            chain(
                {
                    "id": "ask",
                    "type": "webhook",
                    "follow": "error",
                    "props": {"url": server.url.replace("http://", "https://")},
                },
                {"id": "say", "type": "message", "props": {"text": "Sistema indisponível."}},
            )
        )
        with override_settings(EGRESS_ALLOW_PRIVATE=False):
            chat = self.receive("go").chat
        self.assertEqual(self.sent(chat)[-1].text, "Sistema indisponível.")
        self.assertEqual(server.bodies, [])
        step = FlowRun.objects.get(chat=chat).steps.get(node="ask")
        self.assertIn("private or reserved address", step.detail)

    def test_condition_on_opening_hours_and_tags(self):
        for weekday in range(7):
            OpeningHours.objects.create(
                organization=self.org, weekday=weekday, opens_at=time(0, 0), closes_at=time(0, 1)
            )
        self.published_flow(
            chain(
                {"id": "vip", "type": "tag", "props": {"tag": "VIP"}},
                {"id": "open", "type": "condition", "follow": "no", "props": {"subject": "open"}},
                {
                    "id": "closed",
                    "type": "message",
                    "props": {"text": "Estamos fechados; tem a tag {{contact.tags}}"},
                },
            )
        )
        chat = self.receive("go").chat
        chat.refresh_from_db()
        self.assertEqual(chat.tags, ["vip"])
        self.assertTrue(self.sent(chat)[-1].text.startswith("Estamos fechados"))

    def test_any_message_outside_opening_hours_starts_that_flow(self):
        for weekday in range(7):
            OpeningHours.objects.create(
                organization=self.org, weekday=weekday, opens_at=time(0, 0), closes_at=time(0, 1)
            )
        data = chain({"id": "closed", "type": "message", "props": {"text": "Abrimos às 8h."}})
        data["nodes"][0]["props"] = {"outside_hours": True}
        self.published_flow(data)
        chat = self.receive("alguém aí?").chat
        self.assertEqual(self.sent(chat)[-1].text, "Abrimos às 8h.")
        later = self.receive("e aí?")  # the same night: answered once, not at every message
        later.refresh_from_db()
        self.assertEqual((later.handled_by, len(self.sent(chat))), ("", 1))

    def test_classify_routes_by_intent(self):
        data = chain(
            {
                "id": "what",
                "type": "question",
                "props": {"text": "Como posso ajudar?", "save_to": "vars.need"},
            },
            {
                "id": "ai",
                "type": "ai",
                "follow": "intent2",
                "props": {
                    "mode": "classify",
                    "options": ["preço | preço, valor, custa", "agenda | marcar, horário"],
                },
            },
            {"id": "book", "type": "message", "props": {"text": "Vamos marcar!"}},
        )
        self.published_flow(data)
        chat = self.receive("go").chat
        self.receive("Quero marcar um horário")
        self.assertEqual(self.sent(chat)[-1].text, "Vamos marcar!")
        self.assertEqual(FlowRun.objects.get(chat=chat).variables["intent"], "agenda")


class WebhookValidationTests(FlowTestCase):
    def test_a_webhook_must_be_https(self):
        from flows import definition

        data = chain({"id": "ask", "type": "webhook", "props": {"url": "http://example.com/x"}})
        with override_settings(EGRESS_ALLOW_PRIVATE=False):
            problems = [(p.node, p.message) for p in definition.check(data) if p.blocking]
        self.assertEqual(problems, [("ask", "The webhook needs an https:// URL.")])
