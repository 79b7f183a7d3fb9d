"""Back office: flows and their versions to look at, runs and their steps to inspect (read-only;
flows are edited on the canvas, runs only by the runtime)."""

from django.contrib import admin

from accounts.admin import ReadOnlyTenantAdmin
from flows.models import Flow, FlowRun, FlowRunStep, FlowVersion


@admin.register(Flow)
class FlowAdmin(ReadOnlyTenantAdmin):
    list_display = ("name", "organization", "published", "is_active", "revision", "updated_at")
    list_filter = ("is_active",)
    search_fields = ("name",)


@admin.register(FlowVersion)
class FlowVersionAdmin(ReadOnlyTenantAdmin):
    list_display = ("flow", "number", "published_at", "published_by")


class FlowRunStepInline(admin.TabularInline):
    model = FlowRunStep
    fields = ("index", "node", "node_type", "port", "detail", "duration_ms", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(FlowRun)
class FlowRunAdmin(ReadOnlyTenantAdmin):
    list_display = (
        "flow",
        "chat",
        "status",
        "node",
        "step_index",
        "trigger",
        "started_at",
        "ended_at",
    )
    list_filter = ("status",)
    search_fields = ("flow__name", "chat__contact__phone")
    list_select_related = ("flow", "chat__contact", "chat__number")
    inlines = [FlowRunStepInline]
