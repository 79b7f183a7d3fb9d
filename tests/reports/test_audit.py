from allauth.mfa import signals as mfa_signals
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.urls import reverse

from accounts.models import Membership, Role
from integrations.models import WhatsAppNumber
from reports.models import AuditEvent
from tests.base import PASSWORD, BaseTestCase


class AuditLogTests(BaseTestCase):
    def test_it_records_sign_in_with_ip(self):
        self.client.post(
            reverse("account_login"),
            {"login": self.manager.email, "password": PASSWORD},
            REMOTE_ADDR="203.0.113.7",
        )
        event = AuditEvent.objects.get(action=AuditEvent.Action.LOGIN)
        self.assertEqual((event.actor, event.ip), (self.manager, "203.0.113.7"))

    def test_it_records_failed_sign_in_without_the_password(self):
        self.client.post(
            reverse("account_login"), {"login": self.manager.email, "password": "wrong-pass"}
        )
        event = AuditEvent.objects.get(action=AuditEvent.Action.LOGIN_FAILED)
        self.assertEqual(event.target_label, self.manager.email)
        self.assertNotIn("wrong-pass", str(event.data))

    def test_it_records_mfa_changes(self):
        request = RequestFactory().post("/accounts/2fa/", REMOTE_ADDR="198.51.100.1")
        request.user = self.admin
        mfa_signals.authenticator_added.send(
            sender=None, request=request, user=self.admin, authenticator=None
        )
        event = AuditEvent.objects.get(action=AuditEvent.Action.MFA_ADDED)
        self.assertEqual((event.actor, event.ip), (self.admin, "198.51.100.1"))

    def test_it_records_role_changes_with_actor_and_ip(self):
        self.login(self.admin)
        membership = Membership.objects.get(user=self.agent)
        self.client.post(
            reverse("member_role", args=[membership.pk]),
            {"role": Role.OPERATOR},
            REMOTE_ADDR="192.0.2.9",
        )
        event = AuditEvent.objects.get(action=AuditEvent.Action.ROLE_CHANGED)
        self.assertEqual(event.organization, self.org)
        self.assertEqual((event.actor, event.ip), (self.admin, "192.0.2.9"))
        self.assertEqual(event.data["role"], ["agent", "operator"])
        self.assertEqual(event.target_label, self.agent.email)

    def test_it_records_credential_changes_without_secrets(self):
        number = WhatsAppNumber.objects.get(pk=self.number.pk)
        number.name = "Renamed"
        number.save()
        changes = AuditEvent.objects.filter(
            action=AuditEvent.Action.CREDENTIALS_CHANGED, data__created=False
        )
        self.assertFalse(changes.exists())
        number.access_token = "brand-new-token-123456"
        number.save()
        event = changes.get()
        self.assertEqual(event.data["fields"], ["access_token"])
        self.assertNotIn("brand-new-token", str(event.data) + event.target_label)

    def test_it_records_organization_settings_changes(self):
        self.org.require_mfa = True
        self.org.save()
        event = AuditEvent.objects.get(action=AuditEvent.Action.SETTINGS_CHANGED)
        self.assertEqual(event.data["changed"], {"require_mfa": [False, True]})

    def test_it_never_updates_or_deletes_events(self):
        event = AuditEvent.objects.create(action=AuditEvent.Action.LOGIN)
        event.target_label = "tampered"
        with self.assertRaises(PermissionDenied):
            event.save()
        with self.assertRaises(PermissionDenied):
            event.delete()
        with self.assertRaises(PermissionDenied):
            AuditEvent.objects.all().delete()
        with self.assertRaises(PermissionDenied):
            AuditEvent.objects.update(target_label="x")


class AuditPageTests(BaseTestCase):
    def test_it_shows_the_organizations_events_to_admins_and_managers(self):
        self.org.time_zone = "America/Manaus"
        self.org.save()
        self.other_org.time_zone = "America/Manaus"
        self.other_org.save()
        for user in (self.admin, self.manager):
            self.login(user)
            response = self.client.get(reverse("audit_log"))
            self.assertContains(response, "Organization settings changed")
            self.assertContains(response, self.org.name)
            self.assertNotContains(response, self.other_org.name)

    def test_it_filters_by_action(self):
        self.org.time_zone = "America/Manaus"
        self.org.save()
        self.login(self.admin)
        response = self.client.get(reverse("audit_log"), {"action": "role_changed"})
        self.assertContains(response, "No events match.")

    def test_it_is_forbidden_to_operators_and_agents(self):
        for user in (self.operator, self.agent):
            self.login(user)
            self.assertEqual(self.client.get(reverse("audit_log")).status_code, 403)

    def test_it_rejects_post(self):
        self.login(self.admin)
        self.assertEqual(self.client.post(reverse("audit_log")).status_code, 405)


class ApiKeyAuditTests(BaseTestCase):
    def test_it_records_api_key_creation_and_revocation(self):
        from accounts import api_auth
        from reports import tasks

        key, secret = api_auth.api_key_create(
            organization=self.org, name="ERP", scopes=["chats:read"], created_by=self.admin
        )
        created = AuditEvent.objects.get(action=AuditEvent.Action.API_KEY_CREATED)
        self.assertEqual((created.actor, created.organization), (self.admin, self.org))
        self.assertNotIn(secret, str(created.data))
        api_auth.api_key_revoke(key=key)
        tasks.audit_reconcile()
        tasks.audit_reconcile()  # idempotent
        revoked = AuditEvent.objects.get(action=AuditEvent.Action.API_KEY_REVOKED)
        self.assertEqual(revoked.target_id, str(key.code))


class PeriodicTaskTests(BaseTestCase):
    def test_it_refreshes_todays_stats_for_every_organization(self):
        from reports import tasks
        from reports.models import DailyStat

        tasks.stats_refresh()
        self.assertEqual(DailyStat.objects.filter(organization=self.org, agent=None).count(), 2)
        self.assertEqual(
            sum(
                DailyStat.objects.filter(organization=self.org).values_list(
                    "messages_in", flat=True
                )
            ),
            2,
        )


class AuditRetentionOfPeopleTests(BaseTestCase):
    def test_it_keeps_events_when_the_actor_is_deleted(self):
        self.client.post(
            reverse("account_login"), {"login": self.agent.email, "password": PASSWORD}
        )
        self.agent.delete()
        event = AuditEvent.objects.get(action=AuditEvent.Action.LOGIN)
        self.assertIsNone(event.actor)
        self.assertEqual(event.actor_label, "agent@alice.test")
        self.assertTrue(AuditEvent.objects.filter(action=AuditEvent.Action.MEMBER_REMOVED).exists())
