"""No-code conversation flows: versioned graphs of messages, questions, conditions and actions,
run per chat by the conversation router (handler "flow", order 40)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FlowsConfig(AppConfig):
    name = "flows"
    verbose_name = _("Flows")

    def ready(self):
        from flows import node_types, receivers  # noqa: F401  (built-in nodes, router handler)
        from kernel.tasks import register_periodic

        register_periodic("flows.tasks.sweep", 15)
