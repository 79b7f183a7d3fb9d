from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = _("Integrations")

    def ready(self):
        from integrations import outgoing, tasks  # noqa: F401  (signal receivers, periodic sweep)
