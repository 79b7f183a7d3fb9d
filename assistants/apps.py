from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AssistantsConfig(AppConfig):
    name = "assistants"
    verbose_name = _("Assistants")

    def ready(self):
        from assistants import receivers  # noqa: F401  (subscribes to the inbox's domain events)
        from kernel import tasks

        tasks.register_periodic("assistants.tasks.reply_sweep", 60)
        tasks.register_periodic("assistants.tasks.followups_tick", 60)
