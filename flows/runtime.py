"""Running flows: one ``FlowRun`` per chat, advanced one step per transaction.

Why it is safe to retry anything:
- a step is executed only by whoever holds the run's row lock *and* finds ``step_index`` equal
  to the index it was asked for; its ``FlowRunStep`` row (unique per run and index), its sends
  (stored pending, delivered after commit) and the run's move to the next node commit together.
  A retried, duplicated or late task finds the index moved on and does nothing;
- a customer's answer is applied inside the transaction that stores the message (the router's
  claim makes it once), then a task continues with the steps that need no answer;
- nothing waits in memory: a running run carries a lease (``due_at``), a waiting one its wake-up
  or timeout, and the periodic sweep resumes whatever is due — after a worker is killed or a
  deploy, the run continues from the step that did not commit.
"""

import functools
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from flows import definition as flow_definition
from flows import nodes, signals
from flows.models import Flow, FlowRun, FlowRunStep, FlowVersion
from inbox import router
from inbox import services as inbox_services
from inbox.models import Chat, Contact, Message
from kernel import tasks
from kernel.memo import ProcessMemo
from kernel.sql import CompiledQuery

logger = logging.getLogger(__name__)

HANDLER = "flow"
INPUT_TIMEOUT = timedelta(hours=24)  # an unanswered question releases the chat after this
LEASE = timedelta(seconds=60)  # a running run untouched this long lost its worker
MAX_STEPS = 500  # per run: a guard against loops that slipped past validation
VARIABLE = re.compile(r"\{\{\s*(contact|vars)\.([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}")


class FlowNotStartable(Exception):
    """Says why a flow cannot start for this chat (not published, another flow running)."""


@dataclass
class Context:
    """What a node's ``run``/``resume`` works with. Sends go through ``send`` (stored in this
    step's transaction, delivered after commit)."""

    run: FlowRun
    chat: Chat
    contact: Contact
    node: dict
    variables: dict
    sent: list = field(default_factory=list)

    @property
    def props(self) -> dict:
        return self.node.get("props") or {}

    @property
    def flow_name(self) -> str:
        return self.run.flow.name

    def value(self, path: str):
        """``contact.x`` / ``vars.x`` / ``x`` (a flow variable)."""
        scope, _dot, name = path.partition(".")
        if not name:
            scope, name = "vars", scope
        if scope == "contact":
            return contact_value(self.contact, name)
        return self.variables.get(name)

    def render(self, text: str) -> str:
        """Replace ``{{contact.first_name}}`` / ``{{vars.x}}``; plain substitution, no template
        engine runs on what users wrote. Unknown names become empty."""

        def replace(match):
            value = self.value(f"{match.group(1)}.{match.group(2)}")
            return "" if value is None else str(value)

        return VARIABLE.sub(replace, text or "")

    def send(self, message_type: str, content: dict) -> Message:
        message = inbox_services.message_send(
            chat=self.chat,
            message_type=message_type,
            content=content,
            author_type=Message.Author.AUTOMATION,
            author_ref=f"flow:{self.run.flow.code}",
        )
        self.sent.append(message)
        return message

    def reply_id(self, option: str) -> str:
        """The id an interactive option carries back: this run, this node, the option."""
        return f"flowrun:{self.run.code}:{self.node['id']}:{option}"


def contact_value(contact: Contact, name: str):
    if name == "first_name":
        return (contact.display_name or "").split(" ")[0]
    if name in ("name", "phone", "email", "stage", "language"):
        return getattr(contact, name) or (contact.display_name if name == "name" else "")
    if name == "tags":
        return ", ".join(contact.tags or [])
    return (contact.attributes or {}).get(name)


# --- Starting ---------------------------------------------------------------------------------


def run_start(*, flow: Flow, chat: Chat, trigger: str, variables: dict | None = None) -> FlowRun:
    """Start ``flow``'s published version for ``chat`` (after commit, a task takes the steps).
    Raises ``FlowNotStartable`` when it has none or another flow is running in the chat."""
    if flow.published_id is None or not flow.is_active:
        raise FlowNotStartable(_("The flow %(name)s is not published.") % {"name": flow.name})
    version = flow.published
    by_id, edges = version_graph(version.pk, version.definition)
    start = next(n for n in by_id.values() if n["type"] == "start")
    first = edges.get((start["id"], "next"))
    if first is None:
        raise FlowNotStartable(_("The flow %(name)s has no first step.") % {"name": flow.name})
    try:
        with transaction.atomic():
            run = FlowRun.objects.create(
                organization_id=chat.organization_id,
                flow=flow,
                version=version,
                chat=chat,
                node=first,
                trigger=trigger[:64],
                variables=dict(variables or {}),
                due_at=timezone.now() + LEASE,
            )
    except IntegrityError:
        raise FlowNotStartable(_("Another flow is already running in this chat.")) from None
    _timeline(
        chat, _("Flow %(flow)s started (%(trigger)s)") % {"flow": flow.name, "trigger": trigger}
    )
    tasks.enqueue("flows.tasks.run_steps", run.pk, 0, queue="inbound")
    return run


# --- The published graph, memoised -------------------------------------------------------------

# Published versions never change: their graphs are kept for good (no expiry), bounded by
# dropping the oldest half. A ProcessMemo so tests clear it with the others (ids come back).
_graphs = ProcessMemo(ttl=float("inf"))
_GRAPHS_KEPT = 512


def version_graph(version_id: int, definition: dict | None = None) -> tuple[dict, dict]:
    """(nodes by id, edges) of a published version, parsed once per process."""

    def load():
        if len(_graphs._values) >= _GRAPHS_KEPT:
            for key in list(_graphs._values)[: _GRAPHS_KEPT // 2]:
                _graphs._values.pop(key, None)
        data = definition
        if data is None:
            data = FlowVersion.objects.values_list("definition", flat=True).get(pk=version_id)
        return flow_definition.graph(data)

    return _graphs.get(version_id, load)


def run_cancel(*, run: FlowRun, reason: str) -> None:
    if FlowRun.objects.filter(pk=run.pk, status__in=FlowRun.ACTIVE).update(
        status=FlowRun.Status.CANCELLED, outcome=reason[:200], ended_at=timezone.now(), due_at=None
    ):
        router.chat_release(chat=run.chat, by=HANDLER)


# --- Stepping ---------------------------------------------------------------------------------


def run_steps(run_id: int, index: int) -> int:
    """Take steps from ``index`` while the run needs no answer; each in its own transaction,
    so a kill between two steps loses nothing done. Returns how many were taken."""
    taken = 0
    while True:
        next_index = step_take(run_id, index)
        if next_index is None:
            return taken
        taken += 1
        index = next_index


class _StepFailed(Exception):
    def __init__(self, detail: str):
        self.detail = detail


def step_take(run_id: int, index: int) -> int | None:
    """Execute step ``index`` of a running run; the next index to take, or None (the run
    stopped, waits, ended, or someone else took this step already).

    A node that fails rolls its whole step back (no savepoint per step: they cost two round
    trips of the ~10 a step takes); the run is then marked failed in a transaction of its own."""
    try:
        return _step_take(run_id, index)
    except _StepFailed as failure:
        with transaction.atomic():
            run = _locked_run(run_id)
            if run is not None and run.status == FlowRun.Status.RUNNING and run.step_index == index:
                by_id, _edges = version_graph(run.version_id)
                node = by_id[run.node]
                context = Context(run, run.chat, run.chat.contact, node, dict(run.variables))
                _apply(
                    run,
                    node,
                    context,
                    nodes.Outcome(end=FlowRun.Status.FAILED, detail=failure.detail),
                    0,
                )
        return None


# The run with everything a step reads, in the one query that locks it: its flow, its chat
# with the contact, organization and number (sends read the number's provider). The version's
# definition is not fetched: its graph is memoised (``version_graph``).
_RUN_RELATED = ("flow", "chat__contact", "chat__organization", "chat__number")


# The same rows and objects as ``select_for_update(of=("self",)).select_related(*_RUN_RELATED)
# .get(pk=run_id)``, but the query (six tables, ~200 columns) is compiled once per thread and
# connection instead of at every step and answer: compiling it took ~1.3 ms of CPU of a step's
# few (bench/flows.py).
_RUN_LOCK = CompiledQuery(
    lambda run_id: (
        FlowRun.objects.select_for_update(of=("self",))
        .select_related(*_RUN_RELATED)
        .filter(pk=run_id)
    ),
    -7340,  # stands for the run's id while the query is compiled
)


def _locked_run(run_id: int) -> FlowRun | None:
    """The run, locked, with ``_RUN_RELATED``."""
    return _RUN_LOCK.first(run_id)


def _step_take(run_id: int, index: int) -> int | None:
    with transaction.atomic():
        run = _locked_run(run_id)
        if run is None or run.status != FlowRun.Status.RUNNING or run.step_index != index:
            return None
        by_id, _edges = version_graph(run.version_id)
        node = by_id.get(run.node)
        if node is None or run.step_index >= MAX_STEPS:
            _finish(run, FlowRun.Status.FAILED, _("stopped at step %(n)d") % {"n": run.step_index})
            return None
        node_type = nodes.get(node["type"])
        context = Context(run, run.chat, run.chat.contact, node, dict(run.variables))
        started = time.monotonic()
        try:
            outcome = node_type.run(context)
        except inbox_services.SendRefused as refused:
            raise _StepFailed("; ".join(refused.messages)[:200]) from refused
        except Exception as error:
            logger.exception("Flow run %s failed at node %s", run.pk, run.node)
            raise _StepFailed(_("error at %(node)s") % {"node": run.node}) from error
        _apply(run, node, context, outcome, started)
        _answer_pending(run)
        return run.step_index if run.status == FlowRun.Status.RUNNING else None


def input_receive(*, run: FlowRun, message: Message) -> None:
    """The customer answered the node the run waits on (inside the inbound transaction)."""
    run = _locked_run(run.pk)
    if run is None or run.status != FlowRun.Status.WAITING_INPUT:
        return
    _resume(run, message)
    _answer_pending(run)
    if run.status == FlowRun.Status.RUNNING:
        tasks.enqueue("flows.tasks.run_steps", run.pk, run.step_index, queue="inbound")


def _resume(run: FlowRun, message: Message) -> None:
    """Apply ``message`` as the answer of the (locked) run waiting at its node."""
    by_id, _edges = version_graph(run.version_id)
    node = by_id[run.node]
    node_type = nodes.get(node["type"])
    context = Context(run, run.chat, run.chat.contact, node, dict(run.variables))
    started = time.monotonic()
    context.variables["last_text"] = (message.text or "")[:1000]  # for "classify" steps
    outcome = node_type.resume(context, message)
    _apply(run, node, context, outcome, started)


# Customer messages that arrived while the run held the chat without waiting for an answer (an
# AI step waiting for the model): their ids, oldest first, in the run's variables.
PENDING = "_pending"


def input_queue(*, run_id: int, message: Message) -> None:
    """A customer message while the run holds the chat but is not waiting for an answer (an
    AI step waiting for the model). It stays the flow's: kept on the run and answered in order
    when the run next asks (``_answer_pending``), or given back to the router when the run ends
    (``_finish``). Inside the inbound transaction, under the run's lock."""
    run = _locked_run(run_id)
    if run is not None and run.status == FlowRun.Status.WAITING_INPUT:
        _resume(run, message)  # it asked meanwhile: this is the answer
        _answer_pending(run)
        if run.status == FlowRun.Status.RUNNING:
            tasks.enqueue("flows.tasks.run_steps", run.pk, run.step_index, queue="inbound")
        return
    if run is None or run.status not in FlowRun.ACTIVE:
        # The run ended between the router's question and this lock: the team's message.
        Message.objects.filter(pk=message.pk, handled_by=HANDLER).update(handled_by="")
        message.handled_by = ""
        logger.info("Flow run %s ended before message %s could wait on it", run_id, message.pk)
        return
    pending = [*(run.variables.get(PENDING) or []), message.pk]
    run.variables = {**run.variables, PENDING: pending}
    FlowRun.objects.filter(pk=run.pk).update(variables=run.variables)


def _answer_pending(run: FlowRun) -> None:
    """The (locked) run waits for an answer and messages queued while it held the chat are
    there: the oldest is the answer, now, in this transaction (then the next, if it asks
    again)."""
    while run.status == FlowRun.Status.WAITING_INPUT and run.variables.get(PENDING):
        pending = list(run.variables[PENDING])
        message = Message.objects.filter(pk=pending.pop(0), chat_id=run.chat_id).first()
        run.variables = (
            {**run.variables, PENDING: pending}
            if pending
            else {k: v for k, v in run.variables.items() if k != PENDING}
        )
        if message is not None:
            _resume(run, message)


def _pending_take(run: FlowRun) -> list[int]:
    """The messages queued on the run, taken off it (saved with the run's next move)."""
    pending = (run.variables or {}).get(PENDING) or []
    if pending:
        run.variables = {k: v for k, v in run.variables.items() if k != PENDING}
    return pending


def _pending_release(run: FlowRun, pending: list[int]) -> None:
    """The run ended, or waits without holding the chat, with customer messages still queued
    on it: each goes back to the router, oldest first, as if it had just arrived."""
    logger.info(
        "Flow run %s (%s) gives back %d queued customer messages; routing them again",
        run.pk,
        run.status,
        len(pending),
    )
    queued = Message.objects.filter(pk__in=pending, chat_id=run.chat_id, handled_by=HANDLER)
    messages = sorted(queued, key=lambda m: pending.index(m.pk))
    Message.objects.filter(pk__in=[m.pk for m in messages]).update(handled_by="")
    chat = run.chat
    for message in messages:
        message.handled_by = ""
        router.route(router.Inbound(message=message, chat=chat, contact=chat.contact))


def _apply(
    run: FlowRun, node: dict, context: Context, outcome: nodes.Outcome, started: float
) -> None:
    """Record the step and move the run, in the caller's transaction."""
    now = timezone.now()
    # Unique (run, index): a second writer fails on it and its whole step rolls back. Written
    # with the run's move (``_save``), in one statement on PostgreSQL.
    step = FlowRunStep(
        organization_id=run.organization_id,
        run=run,
        index=run.step_index,
        node=node["id"],
        node_type=node["type"],
        port=outcome.port,
        detail=outcome.detail[:200],
        entered_at=run.updated_at or now,
        duration_ms=max(0, int((now - (run.updated_at or now)).total_seconds() * 1000)),
    )
    run.variables = context.variables
    run.step_index += 1
    if outcome.wait == "input" and not outcome.port:
        if run.status == FlowRun.Status.WAITING_INPUT:
            run.retries += 1  # asked again
        else:
            run.retries = 0
        run.status = FlowRun.Status.WAITING_INPUT
        run.due_at = now + INPUT_TIMEOUT
        _save(run, step)
        router.chat_hold(chat=run.chat, by=HANDLER, until=run.due_at)
        return
    by_id, edges = version_graph(run.version_id)
    if outcome.jump:
        _finish(run, FlowRun.Status.COMPLETED, outcome.detail, node=node, step=step)
        target = Flow.objects.filter(organization_id=run.organization_id, code=outcome.jump).first()
        if target is not None:
            try:
                run_start(
                    flow=target,
                    chat=run.chat,
                    trigger=f"flow {run.flow.name}"[:64],
                    variables=run.variables,
                )
            except FlowNotStartable as refused:
                logger.info("Flow run %s could not go to %s: %s", run.pk, outcome.jump, refused)
        return
    if outcome.end:
        _finish(run, outcome.end, outcome.detail, node=node, step=step)
        return
    if outcome.wait == "time":
        run.status = FlowRun.Status.WAITING_TIME
        run.due_at = outcome.until
        run.node = node["id"] if outcome.stay else edges.get((node["id"], outcome.port), "")
        run.retries = 0
        if run.node == "":
            _finish(run, FlowRun.Status.COMPLETED, "", node=node, step=step)
            return
        pending = None if outcome.hold else _pending_take(run)
        _save(run, step)
        if outcome.hold:
            # The flow keeps the chat while it waits (an AI step and its model): a message
            # meanwhile is queued on the run (``input_queue``). Past the wait and a lease, the
            # hold lapses by itself, should nothing wake the run.
            router.chat_hold(chat=run.chat, by=HANDLER, until=outcome.until + LEASE)
        elif run.chat.held_by == HANDLER:
            router.chat_release(chat=run.chat, by=HANDLER)
        if pending:  # a plain wait does not hold the chat: queued messages go on now
            _pending_release(run, pending)
        return
    target = edges.get((node["id"], outcome.port)) if outcome.port else None
    if target is None:
        _finish(run, FlowRun.Status.COMPLETED, outcome.detail, node=node, step=step)
        return
    run.node = target
    run.status = FlowRun.Status.RUNNING
    run.retries = 0
    run.due_at = now + LEASE
    _save(run, step)
    if run.chat.held_by == HANDLER and not run.variables.get(PENDING):
        # (Messages queued while an AI step waited keep the chat held until they are answered.)
        router.chat_release(chat=run.chat, by=HANDLER)


_SAVED_FIELDS = (
    "status", "node", "step_index", "retries", "variables", "due_at", "outcome", "ended_at",
    "updated_at",
)  # fmt: skip


_SAVED = [FlowRun._meta.get_field(name) for name in _SAVED_FIELDS]


@functools.cache
def _save_sql() -> str:
    """The step's INSERT and the run's UPDATE in one statement (PostgreSQL), built once."""
    run_table, step_table = FlowRun._meta.db_table, FlowRunStep._meta.db_table
    step_columns = [
        "organization_id", "run_id", "index", "node", "node_type", "port", "detail",
        "entered_at", "created_at", "duration_ms",
    ]  # fmt: skip
    assignments = ", ".join(f'"{field.column}" = %s' for field in _SAVED)
    columns = ", ".join(f'"{c}"' for c in step_columns)
    placeholders = ", ".join(["%s"] * len(step_columns))
    return (
        # Names from the models' own metadata; every value is a parameter.
        f'WITH step AS (INSERT INTO "{step_table}" ({columns}) VALUES ({placeholders}) '  # noqa: S608
        f'RETURNING 1) UPDATE "{run_table}" SET {assignments} WHERE "id" = %s'
    )


def _save(run: FlowRun, step: FlowRunStep | None = None) -> None:
    """Store the run's move (and the step row that records it). On PostgreSQL both go in one
    statement (a data-modifying CTE: one round trip instead of two); elsewhere one after the
    other. Either way the step's unique (run, index) refuses a second writer."""
    run.updated_at = timezone.now()
    if step is None or connection.vendor != "postgresql":
        if step is not None:
            step.save(force_insert=True)
        run.save(update_fields=_SAVED_FIELDS)
        return
    step.created_at = run.updated_at
    step_values = [
        step.organization_id, run.pk, step.index, step.node, step.node_type, step.port,
        step.detail, step.entered_at, step.created_at, step.duration_ms,
    ]  # fmt: skip
    run_values = [
        field.get_db_prep_save(getattr(run, field.attname), connection) for field in _SAVED
    ]
    sql = _save_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, [*step_values, *run_values, run.pk])


def _finish(
    run: FlowRun,
    status: str,
    detail: str,
    *,
    node: dict | None = None,
    step: FlowRunStep | None = None,
) -> None:
    run.status = status
    run.outcome = detail[:200]
    run.ended_at = timezone.now()
    run.due_at = None
    if node is not None:
        run.node = node["id"]
    pending = _pending_take(run)
    if pending and status != FlowRun.Status.COMPLETED:
        logger.warning(
            "Flow run %s stopped (%s) while holding the chat; releasing it", run.pk, status
        )
    _save(run, step)
    router.chat_release(chat=run.chat, by=HANDLER)
    if pending:
        _pending_release(run, pending)
    labels = {
        FlowRun.Status.COMPLETED: _("Flow %(flow)s completed"),
        FlowRun.Status.HANDED_OFF: _("Flow %(flow)s handed the chat to the team"),
        FlowRun.Status.FAILED: _("Flow %(flow)s stopped"),
        FlowRun.Status.EXPIRED: _("Flow %(flow)s ended: no answer"),
    }
    text = labels.get(status, _("Flow %(flow)s ended")) % {"flow": run.flow.name}
    _timeline(run.chat, f"{text}: {detail}" if detail else text)
    signals.send_on_commit(signals.run_ended, run_id=run.pk, status=status)


def _timeline(chat: Chat, text: str) -> Message:
    """A run-log line in the chat's timeline (team only, never sent)."""
    entry = Message.objects.create(
        organization_id=chat.organization_id,
        chat=chat,
        number_id=chat.number_id,
        direction=Message.Direction.INTERNAL,
        type=Message.Type.ACTIVITY,
        text=text[:4096],
        content={"type": "activity", "activity": {"kind": "flow"}},
        status=Message.Status.RECEIVED,
        author_type=Message.Author.AUTOMATION,
    )
    inbox_services.publish_chat_event(chat, "message.new", message=str(entry.code))
    return entry


def step_log(context: Context, text: str) -> None:
    """``flow Agendamento: step Menu → chose Limpeza`` in the timeline."""
    label = context.props.get("label") or context.node["id"]
    _timeline(
        context.chat,
        _("Flow %(flow)s: step %(step)s → %(what)s")
        % {"flow": context.flow_name, "step": label, "what": text},
    )


# --- The sweep --------------------------------------------------------------------------------


def sweep(*, now=None, limit: int = 500) -> int:
    """Resume what is due: expired leases (a killed worker), finished waits, and unanswered
    questions past their timeout (the run ends and the chat is released)."""
    now = now or timezone.now()
    due = list(
        FlowRun.objects.filter(status__in=FlowRun.ACTIVE, due_at__lte=now)
        .order_by("due_at")
        .values_list("pk", "status", "step_index")[:limit]
    )
    for run_id, status, index in due:
        if status == FlowRun.Status.WAITING_TIME:
            woke = FlowRun.objects.filter(
                pk=run_id, status=status, step_index=index, due_at__lte=now
            ).update(status=FlowRun.Status.RUNNING, due_at=now + LEASE)
            if woke:
                tasks.dispatch("flows.tasks.run_steps", run_id, index, queue="default")
        elif status == FlowRun.Status.RUNNING:
            if FlowRun.objects.filter(
                pk=run_id, status=status, step_index=index, due_at__lte=now
            ).update(due_at=now + LEASE):
                tasks.dispatch("flows.tasks.run_steps", run_id, index, queue="default")
        else:
            with transaction.atomic():
                run = (
                    FlowRun.objects.select_for_update(of=("self",))
                    .select_related("flow", "chat")
                    .filter(pk=run_id, status=status, step_index=index, due_at__lte=now)
                    .first()
                )
                if run is not None:
                    _finish(run, FlowRun.Status.EXPIRED, "")
    return len(due)
