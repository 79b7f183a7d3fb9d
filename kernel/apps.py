from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class KernelConfig(AppConfig):
    name = "kernel"
    verbose_name = _("Background work")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from kernel import checks, outbox, tasks  # noqa: F401 (checks registers itself)

        tasks.register_periodic("kernel.outbox.sweep", outbox.SWEEP_SECONDS)
