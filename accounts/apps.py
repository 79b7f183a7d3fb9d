import sys

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts and organizations")

    def ready(self):
        from accounts import (
            api_auth,  # noqa: F401  (a revoked key is forgotten everywhere)
            services,  # noqa: F401  (membership changes close live sockets)
        )
        from kernel import tasks

        # The base app mirrors the periodic tasks into django-q2 schedules for `qcluster`.
        post_migrate.connect(tasks.ensure_schedules, sender=self, dispatch_uid="porfin-schedules")
        if sys.argv[1:2] == ["qcluster"]:
            from django_q.conf import Conf

            # Heartbeats and sub-minute periodic work (django-q2 schedules count in minutes).
            tasks.start_cluster_ticker(Conf.CLUSTER_NAME)
            tasks.lower_worker_priority()  # the web processes first on a shared box
