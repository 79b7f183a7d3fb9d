"""Running flows through the conversation router: triggers, holds, answers, idempotent steps,
and runs that survive a worker dying between two steps."""

from datetime import timedelta
from unittest import mock

from django.utils import timezone

from flows import runtime
from flows.models import FlowRun, FlowRunStep
from inbox.models import Chat, Contact, Message
from kernel import tasks
from tests.flows.helpers import CUSTOMER, FlowTestCase, five_nodes


class RunTests(FlowTestCase):
    def run_of(self, chat) -> FlowRun:
        return FlowRun.objects.filter(chat=chat).latest("started_at")

    def menu_reply_id(self, chat) -> str:
        menu = self.sent(chat)[-1]
        return menu.content["interactive"]["action"]["buttons"][0]["reply"]["id"]

    def test_a_keyword_starts_the_flow_and_answers_are_captured(self):
        flow = self.published_flow()
        first = self.receive("Menu", name="Maria Souza")
        first.refresh_from_db()
        self.assertEqual(first.handled_by, "flow")
        chat = Chat.objects.get(pk=first.chat_id)
        self.assertEqual([m.text for m in self.sent(chat)], ["Olá Maria!", "O que deseja?"])
        self.assertEqual(chat.held_by, "flow")
        self.assertEqual(self.run_of(chat).status, FlowRun.Status.WAITING_INPUT)

        tapped = self.tap(self.menu_reply_id(chat), "Limpeza")
        tapped.refresh_from_db()
        self.assertEqual(tapped.handled_by, "flow")
        self.assertEqual(self.sent(chat)[-1].text, "Qual o seu email?")

        self.receive("not an email")
        self.assertEqual(
            [m.text for m in self.sent(chat)[-2:]],
            ["That doesn't look right. Please try again.", "Qual o seu email?"],
        )
        self.receive("Maria@Example.com")
        contact = Contact.objects.get(wa_id=CUSTOMER)
        self.assertEqual(contact.email, "maria@example.com")
        self.assertEqual(
            self.sent(chat)[-1].text, "Obrigado! Vamos escrever para maria@example.com."
        )
        run = self.run_of(chat)
        self.assertEqual((run.status, run.flow_id), (FlowRun.Status.COMPLETED, flow.pk))
        chat.refresh_from_db()
        self.assertEqual(chat.held_by, "")
        timeline = list(
            Message.objects.filter(chat=chat, type=Message.Type.ACTIVITY).values_list(
                "text", flat=True
            )
        )
        self.assertIn("Flow Agendamento: step Menu → chose Limpeza", timeline)
        self.assertIn("Flow Agendamento completed", timeline)

    def test_typed_option_titles_count_and_nonsense_takes_the_didnt_understand_edge(self):
        data = five_nodes()
        data["nodes"].append(
            {"id": "sorry", "type": "message", "props": {"text": "Vou chamar alguém."}}
        )
        data["nodes"][2]["props"]["retries"] = 1
        data["edges"].append({"from": "menu", "port": "no_match", "to": "sorry"})
        self.published_flow(data)
        chat = self.receive("menu").chat
        self.receive("banana")
        self.assertEqual(
            [m.text for m in self.sent(chat)[-2:]],
            ["Sorry, I didn't understand. Please choose an option.", "O que deseja?"],
        )
        self.receive("abacaxi")
        self.assertEqual(self.sent(chat)[-1].text, "Vou chamar alguém.")
        self.assertEqual(self.run_of(chat).status, FlowRun.Status.COMPLETED)

    def test_a_retried_task_never_sends_twice(self):
        self.published_flow()
        with mock.patch.object(tasks, "enqueue"):  # the worker has not started yet
            chat = self.receive("menu").chat
        run = self.run_of(chat)
        with self.captureOnCommitCallbacks(execute=True):
            runtime.run_steps(run.pk, 0)
        with self.captureOnCommitCallbacks(execute=True):
            runtime.run_steps(run.pk, 0)  # the queue delivered the task again
            runtime.run_steps(run.pk, 1)
        self.assertEqual([m.text for m in self.sent(chat)], ["Olá Maria!", "O que deseja?"])
        self.assertEqual(FlowRunStep.objects.filter(run=run).count(), 2)

    def test_a_run_whose_worker_died_between_steps_continues_from_the_sweep(self):
        self.published_flow()
        with mock.patch.object(tasks, "enqueue"):
            chat = self.receive("menu").chat
        run = self.run_of(chat)
        with self.captureOnCommitCallbacks(execute=True):
            runtime.step_take(run.pk, 0)  # the welcome went out, then the worker was killed
        self.assertEqual([m.text for m in self.sent(chat)], ["Olá Maria!"])
        with self.captureOnCommitCallbacks(execute=True):
            runtime.sweep()  # the lease has not passed: nothing to do
        self.assertEqual(len(self.sent(chat)), 1)
        with self.captureOnCommitCallbacks(execute=True):
            runtime.sweep(now=timezone.now() + runtime.LEASE + timedelta(seconds=1))
        self.assertEqual([m.text for m in self.sent(chat)], ["Olá Maria!", "O que deseja?"])
        self.assertEqual(self.run_of(chat).status, FlowRun.Status.WAITING_INPUT)

    def test_one_flow_per_chat_and_the_keyword_mid_flow_is_an_answer(self):
        self.published_flow()
        self.published_flow(name="Outro")  # same keyword
        chat = self.receive("menu").chat
        self.receive("menu")  # while the menu waits: not an option → re-asked, no second run
        self.assertEqual(FlowRun.objects.filter(chat=chat).count(), 1)

    def test_an_unanswered_question_times_out_and_releases_the_chat(self):
        self.published_flow()
        chat = self.receive("menu").chat
        with self.captureOnCommitCallbacks(execute=True):
            runtime.sweep(now=timezone.now() + runtime.INPUT_TIMEOUT + timedelta(minutes=1))
        chat.refresh_from_db()
        self.assertEqual((chat.held_by, self.run_of(chat).status), ("", FlowRun.Status.EXPIRED))
        later = self.receive("oi")
        later.refresh_from_db()
        self.assertEqual(later.handled_by, "")  # the team's again

    def test_a_person_replying_releases_the_flow(self):
        from inbox import services as inbox_services

        self.published_flow()
        chat = self.receive("menu").chat
        chat = Chat.objects.select_related("contact", "organization").get(pk=chat.pk)
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.message_send(
                chat=chat,
                message_type="text",
                content={"body": "Oi, aqui é a Ana"},
                author_user=self.admin,
            )
        answer = self.receive("Limpeza")
        answer.refresh_from_db()
        self.assertEqual(answer.handled_by, "")

    def test_waits_survive_and_resume_when_due(self):
        data = five_nodes()
        data["nodes"].insert(
            2, {"id": "pause", "type": "wait", "props": {"amount": 2, "unit": "hours"}}
        )
        data["edges"][1] = {"from": "welcome", "port": "next", "to": "pause"}
        data["edges"].append({"from": "pause", "port": "next", "to": "menu"})
        self.published_flow(data)
        chat = self.receive("menu").chat
        run = self.run_of(chat)
        self.assertEqual((run.status, run.node), (FlowRun.Status.WAITING_TIME, "menu"))
        with self.captureOnCommitCallbacks(execute=True):
            runtime.sweep(now=timezone.now() + timedelta(hours=1))
        self.assertEqual(len(self.sent(chat)), 1)
        with self.captureOnCommitCallbacks(execute=True):
            runtime.sweep(now=timezone.now() + timedelta(hours=2, seconds=1))
        self.assertEqual(self.sent(chat)[-1].text, "O que deseja?")

    def test_a_running_conversation_finishes_on_the_version_it_started(self):
        from flows import services

        flow = self.published_flow()
        chat = self.receive("menu").chat
        changed = five_nodes()
        changed["nodes"][3]["props"]["text"] = "Novo texto"
        flow.refresh_from_db()
        services.draft_save(flow=flow, draft=changed, revision=flow.revision)
        services.flow_publish(flow=flow)
        self.receive("Limpeza")
        self.assertEqual(self.sent(chat)[-1].text, "Qual o seu email?")


class RegistryTests(FlowTestCase):
    def test_another_app_adds_a_node_type_without_touching_flows(self):
        from flows import nodes

        def book(context):
            context.variables["slot"] = "terça 9h"
            return nodes.Outcome(port="booked", detail="booked")

        nodes.register_node(
            "book_test",
            label="Book (test)",
            run=book,
            ports=["booked", "full"],
            validate=lambda props: [] if props.get("agenda") else ["Choose an agenda."],
        )
        self.addCleanup(nodes._registry.pop, "book_test")
        data = {
            "nodes": [
                {"id": "start", "type": "start", "props": {"keywords": "agendar"}},
                {"id": "book", "type": "book_test", "props": {"agenda": "Dra. Ana"}},
                {"id": "ok", "type": "message", "props": {"text": "Marcado: {{vars.slot}}"}},
            ],
            "edges": [
                {"from": "start", "port": "next", "to": "book"},
                {"from": "book", "port": "booked", "to": "ok"},
            ],
        }
        self.published_flow(data)
        chat = self.receive("agendar").chat
        self.assertEqual(self.sent(chat)[-1].text, "Marcado: terça 9h")
        from flows import definition

        data["nodes"][1]["props"] = {}
        self.assertEqual(
            [(p.node, p.message) for p in definition.check(data) if p.blocking],
            [("book", "Choose an agenda.")],
        )


class ErasureTests(FlowTestCase):
    def test_erasing_a_contact_clears_the_answers_its_flow_runs_captured(self):
        from reports.privacy import contact_erase

        self.published_flow()
        chat = self.receive("menu").chat
        self.receive("Limpeza")
        self.receive("maria@example.com")
        run = FlowRun.objects.get(chat=chat)
        self.assertEqual(run.variables["email"], "maria@example.com")
        contact_erase(contact=Contact.objects.get(pk=chat.contact_id), actor=self.admin)
        run.refresh_from_db()
        self.assertEqual(run.variables, {})


class FailureTests(FlowTestCase):
    def test_a_send_refused_after_a_long_wait_fails_the_run_and_stores_nothing(self):
        data = five_nodes()
        data["nodes"].insert(
            1, {"id": "later", "type": "wait", "props": {"amount": 2, "unit": "days"}}
        )
        data["edges"][0] = {"from": "start", "port": "next", "to": "later"}
        data["edges"].append({"from": "later", "port": "next", "to": "welcome"})
        data["nodes"].append({"id": "vip", "type": "tag", "props": {"tag": "vip"}})
        self.published_flow(data)
        chat = self.receive("menu").chat
        Chat.objects.filter(pk=chat.pk).update(window_expires_at=timezone.now())
        with self.captureOnCommitCallbacks(execute=True):
            runtime.sweep(now=timezone.now() + timedelta(days=2, minutes=1))
        run = FlowRun.objects.get(chat=chat)
        self.assertEqual(run.status, FlowRun.Status.FAILED)
        self.assertIn("24-hour customer service window is closed", run.outcome)
        self.assertEqual(self.sent(chat), [])
        self.assertTrue(
            Message.objects.filter(chat=chat, text__startswith="Flow Agendamento stopped").exists()
        )

    def test_a_node_that_breaks_rolls_its_step_back_and_fails_the_run(self):
        from flows import nodes

        def broken(context):
            context.send("text", {"body": "half done"})
            raise RuntimeError("boom")

        nodes.register_node("broken_test", label="Broken", run=broken)
        self.addCleanup(nodes._registry.pop, "broken_test")
        data = {
            "nodes": [
                {"id": "start", "type": "start", "props": {"keywords": "go"}},
                {"id": "oops", "type": "broken_test", "props": {}},
            ],
            "edges": [{"from": "start", "port": "next", "to": "oops"}],
        }
        self.published_flow(data)
        chat = self.receive("go").chat
        run = FlowRun.objects.get(chat=chat)
        self.assertEqual((run.status, run.outcome), (FlowRun.Status.FAILED, "error at oops"))
        self.assertEqual(self.sent(chat), [])  # the half-done send was rolled back
