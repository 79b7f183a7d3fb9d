"""Deleting a flow: a confirmation page; refused while conversations are in it unless the
admin says to stop them (their chats are released); other organizations' flows answer 404."""

from django.urls import reverse

from flows.models import Flow, FlowRun, FlowVersion
from inbox.models import Chat
from tests.flows.helpers import FlowTestCase


class FlowDeleteTests(FlowTestCase):
    def test_refused_while_runs_are_active_then_deleted_when_told_to_stop_them(self):
        flow = self.published_flow()
        first = self.receive("menu")
        chat = Chat.objects.get(pk=first.chat_id)
        self.assertEqual(chat.held_by, "flow")
        self.login(self.admin)
        url = reverse("flow_delete", args=[flow.code])
        page = self.client.get(url)
        self.assertContains(page, "1 conversation is in this flow right now.")
        self.assertContains(self.client.get(reverse("flow_edit", args=[flow.code])), url)

        wrong_name = self.client.post(url, {"name": "outro", "stop_runs": "1"})
        self.assertContains(wrong_name, "Type the flow", status_code=422)
        busy = self.client.post(url, {"name": flow.name})
        self.assertContains(busy, "conversations are in this flow right now", status_code=409)
        self.assertTrue(Flow.objects.filter(pk=flow.pk).exists())

        done = self.client.post(url, {"name": flow.name, "stop_runs": "1"}, follow=True)
        self.assertContains(done, "Flow Agendamento deleted. 1 conversations in it were stopped.")
        self.assertFalse(Flow.objects.filter(pk=flow.pk).exists())
        self.assertFalse(FlowVersion.objects.filter(flow_id=flow.pk).exists())
        self.assertFalse(FlowRun.objects.filter(flow_id=flow.pk).exists())
        chat.refresh_from_db()
        self.assertEqual(chat.held_by, "")
        # The keyword no longer starts anything: the next message is an ordinary one.
        again = self.receive("menu")
        again.refresh_from_db()
        self.assertNotEqual(again.handled_by, "flow")

    def test_only_editors_of_the_organization_may_delete(self):
        flow = self.published_flow()
        self.login(self.operator)  # sees flows, does not edit them
        self.assertEqual(self.client.get(reverse("flow_delete", args=[flow.code])).status_code, 403)
        self.login(self.outsider)
        response = self.client.post(reverse("flow_delete", args=[flow.code]), {"name": flow.name})
        self.assertEqual(response.status_code, 404)
        self.assertTrue(Flow.objects.filter(pk=flow.pk).exists())
