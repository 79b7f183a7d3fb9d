from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InboxConfig(AppConfig):
    name = "inbox"
    verbose_name = _("Inbox")

    def ready(self):
        from inbox import (  # noqa: F401  (domain events; periodic sweeps; number health)
            number_health,
            receivers,
            tasks,
        )
