"""Per-flow analytics: entered, completed, handed off, dropped per node, median time per step,
shown on the flow page over the canvas."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from flows import analytics, runtime
from flows.models import FlowRunStep
from tests.flows.helpers import FlowTestCase, five_nodes


class AnalyticsTests(FlowTestCase):
    def test_the_funnel_counts_runs_and_where_they_stopped(self):
        data = five_nodes()
        data["nodes"].append({"id": "human", "type": "handoff", "props": {}})
        data["edges"][3] = {"from": "menu", "port": "opt2", "to": "human"}
        flow = self.published_flow(data)
        # Maria completes; João asks for a person; Ana never answers the menu.
        self.receive("menu", wa_id="5511900000101")
        self.receive("Limpeza", wa_id="5511900000101")
        self.receive("maria@example.com", wa_id="5511900000101")
        self.receive("menu", wa_id="5511900000102")
        self.receive("Clareamento", wa_id="5511900000102")
        self.receive("menu", wa_id="5511900000103")
        with self.captureOnCommitCallbacks(execute=True):
            runtime.sweep(now=timezone.now() + runtime.INPUT_TIMEOUT + timedelta(minutes=1))
        FlowRunStep.objects.filter(node="menu", port="opt1").update(duration_ms=4000)
        funnel = analytics.flow_funnel(flow)
        self.assertEqual(
            (funnel["entered"], funnel["completed"], funnel["handoffs"], funnel["dropped"]),
            (3, 1, 1, 1),
        )
        self.assertEqual(funnel["nodes"]["menu"]["entered"], 3)
        self.assertEqual(funnel["nodes"]["menu"]["dropped"], 1)
        self.assertEqual(funnel["nodes"]["email"]["entered"], 1)
        self.assertIsNotNone(funnel["nodes"]["menu"]["median_ms"])

        self.login(self.operator)
        page = self.client.get(reverse("flow_edit", args=[flow.code]))
        self.assertContains(page, "<strong>3</strong> entered", html=False)
        self.assertContains(page, "<strong>1</strong> handed off", html=False)
        self.assertEqual(page.context["funnel"]["nodes"]["menu"]["dropped"], 1)
