"""Flows are data: a draft graph being edited, immutable published versions, and runs.

A ``Flow`` keeps its working copy (``draft``) with a ``revision`` counter, so two editors
saving from the same revision do not silently overwrite each other. Publishing copies the draft
into a new ``FlowVersion`` that is never changed again: a run keeps the version it started on.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models import TenantModel


class Flow(TenantModel):
    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    name = models.CharField(_("name"), max_length=120)
    description = models.CharField(_("description"), max_length=500, blank=True)
    draft = models.JSONField(_("draft"), default=dict)
    revision = models.PositiveIntegerField(default=1)
    published = models.ForeignKey(
        "FlowVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("live version"),
    )
    is_active = models.BooleanField(_("active"), default=True)
    template_key = models.CharField(max_length=40, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("flow")
        verbose_name_plural = _("flows")

    def __str__(self):
        return self.name


class FlowVersion(TenantModel):
    """A published snapshot; immutable (runs point at it until they end)."""

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    published_at = models.DateTimeField(auto_now_add=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["flow", "number"], name="unique_flow_version_number")
        ]
        verbose_name = _("flow version")
        verbose_name_plural = _("flow versions")

    def __str__(self):
        return f"{self.flow} v{self.number}"


class FlowRun(TenantModel):
    """One chat going through one flow version. ``step_index`` numbers the steps taken; a task
    only executes the step it was queued for, so a retried or duplicated task does nothing."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        WAITING_INPUT = "waiting_input", _("Waiting for an answer")
        WAITING_TIME = "waiting_time", _("Waiting")
        COMPLETED = "completed", _("Completed")
        HANDED_OFF = "handed_off", _("Handed off")
        EXPIRED = "expired", _("No answer (timed out)")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Failed")

    ACTIVE = (Status.RUNNING, Status.WAITING_INPUT, Status.WAITING_TIME)

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey(FlowVersion, on_delete=models.PROTECT, related_name="runs")
    chat = models.ForeignKey("inbox.Chat", on_delete=models.CASCADE, related_name="flow_runs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    node = models.CharField(max_length=64)  # the node to execute next (or waiting on)
    step_index = models.PositiveIntegerField(default=0)
    retries = models.PositiveSmallIntegerField(default=0)  # re-asks at the current node
    variables = models.JSONField(default=dict, blank=True)
    trigger = models.CharField(max_length=64, blank=True)
    # RUNNING: lease (a worker died if it passes); WAITING_TIME: wake-up; WAITING_INPUT: timeout.
    due_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["chat"],
                condition=Q(status__in=["running", "waiting_input", "waiting_time"]),
                name="one_active_flow_run_per_chat",
            )
        ]
        indexes = [
            # The sweep: runs whose lease, wake-up or timeout has passed.
            models.Index(
                fields=["due_at"],
                condition=Q(status__in=["running", "waiting_input", "waiting_time"]),
                name="flow_run_due",
            ),
            models.Index(fields=["flow", "status"], name="flow_run_flow_status"),
        ]
        verbose_name = _("flow run")
        verbose_name_plural = _("flow runs")

    def __str__(self):
        return f"{self.flow} · {self.chat_id} · {self.status}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class FlowRunStep(TenantModel):
    """One executed step. Unique per (run, index) and written in the same transaction as the
    step's sends: a step that committed is never executed (nor sent) again."""

    run = models.ForeignKey(FlowRun, on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveIntegerField()
    node = models.CharField(max_length=64)
    node_type = models.CharField(max_length=32)
    port = models.CharField(max_length=64, blank=True)  # the edge taken ("" = stopped here)
    detail = models.CharField(max_length=200, blank=True)  # "chose Limpeza", "saved email"
    entered_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    duration_ms = models.PositiveIntegerField(default=0)  # time spent at the node (answers incl.)

    class Meta:
        ordering = ["run", "index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "index"], name="unique_flow_run_step")
        ]
        indexes = [models.Index(fields=["organization", "node"], name="flow_step_org_node")]
        verbose_name = _("flow run step")
        verbose_name_plural = _("flow run steps")

    def __str__(self):
        return f"{self.run_id}#{self.index} {self.node}"
