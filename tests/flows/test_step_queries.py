"""How many database round trips one flow step takes (a message step and an answer). The
bound is what the runtime promises: the run and its chat read once with its lock, the
published version's graph memoised per process, the step row and the run's move written
together, the outgoing message stored."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from flows import runtime
from flows.models import FlowRun
from inbox.models import Chat
from tests.flows.helpers import FlowTestCase


# Statements besides the transaction's own (BEGIN/COMMIT, or a test's savepoint): read and
# lock the run with its chat, contact, organization and number; the message (insert, the
# chat's preview, its live-event sequence); the step row with the run's move (one statement on
# PostgreSQL, two elsewhere); the chat held for the answer. It was 10 (the number read lazily,
# a savepoint around the send, the version's definition fetched and parsed at every step).
def step_bound() -> int:
    return 6 if connection.vendor == "postgresql" else 7


def statements(queries) -> list[str]:
    control = ("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN", "COMMIT", "ROLLBACK")
    return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(control)]


class StepQueriesTests(FlowTestCase):
    def test_a_message_step_stays_within_its_round_trips(self):
        self.published_flow()
        first = self.receive("outra coisa")  # a chat, not in a flow yet
        chat = Chat.objects.get(pk=first.chat_id)
        from flows.models import Flow

        flow = Flow.objects.get(organization=self.org)
        with self.captureOnCommitCallbacks(execute=False):
            run = runtime.run_start(flow=flow, chat=chat, trigger="test")
        runtime.step_take(run.pk, 0)  # the welcome: the memo is warm after the first step
        run.refresh_from_db()
        self.assertEqual(run.node, "menu")
        with CaptureQueriesContext(connection) as queries:
            runtime.step_take(run.pk, run.step_index)
        run.refresh_from_db()
        self.assertEqual(run.status, FlowRun.Status.WAITING_INPUT)
        done = statements(queries)
        self.assertLessEqual(len(done), step_bound(), [sql[:100] for sql in done])
        self.assertEqual(len([q for q in done if "flows_flowversion" in q]), 0)

    def test_an_answer_stays_within_its_round_trips(self):
        """The customer's email answer: the run read and locked once, the contact saved, the
        step and the run's move, the next step queued (not taken here)."""
        self.published_flow()
        first = self.receive("menu")
        chat = Chat.objects.get(pk=first.chat_id)
        reply_id = self.sent(chat)[-1].content["interactive"]["action"]["buttons"][0]["reply"]
        self.tap(reply_id["id"], "Limpeza")
        run = FlowRun.objects.get(chat=chat)
        self.assertEqual(run.node, "email")
        from inbox.models import Message

        answer = Message.objects.create(
            organization=self.org, chat=chat, number=self.number, direction="in",
            text="maria@example.com", wamid="wamid.answer", author_type="customer",
        )  # fmt: skip
        with (
            self.captureOnCommitCallbacks(execute=False),
            CaptureQueriesContext(connection) as queries,
        ):
            from django.db import transaction

            with transaction.atomic():
                runtime.input_receive(run=run, message=answer)
        done = statements(queries)
        self.assertLessEqual(len(done), step_bound(), [sql[:100] for sql in done])
        run.refresh_from_db()
        self.assertEqual((run.status, run.node), (FlowRun.Status.RUNNING, "thanks"))
