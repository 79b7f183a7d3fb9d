from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = _("Integrations")

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from integrations import outgoing, services, tasks  # noqa: F401  (receivers, sweep)
        from integrations.models import WhatsAppNumber

        def number_changed(sender, instance, **kwargs):
            services.forget_webhook_number(instance)

        # A number saved or deleted anywhere (services, admin, shell) reaches every process's
        # webhook cache at once, not after its TTL.
        post_save.connect(number_changed, sender=WhatsAppNumber, dispatch_uid="number-saved")
        post_delete.connect(number_changed, sender=WhatsAppNumber, dispatch_uid="number-deleted")
