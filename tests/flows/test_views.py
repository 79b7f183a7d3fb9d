"""The flow pages: role matrix, the editor's JSON save with optimistic concurrency, publish,
export and import."""

import json

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import Role
from flows import definition, services
from flows.models import Flow
from tests.base import BaseTestCase
from tests.flows.helpers import five_nodes


class FlowPagesTests(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.flow = services.flow_create(
            organization=cls.org, name="Agendamento", draft=five_nodes()
        )
        cls.secret = services.flow_create(organization=cls.other_org, name="Bob's flow")

    def save(self, draft, revision, user=None):
        self.login(user or self.admin)
        return self.client.post(
            reverse("flow_save", args=[self.flow.code]),
            json.dumps({"revision": revision, "definition": draft}),
            content_type="application/json",
        )

    def test_it_follows_the_role_matrix(self):
        expected = {Role.ADMIN: 200, Role.MANAGER: 200, Role.OPERATOR: 200, Role.AGENT: 403}
        for role, status in expected.items():
            self.login(self.members[role])
            with self.subTest(role=role):
                self.assertEqual(self.client.get(reverse("flow_list")).status_code, status)
                self.assertEqual(
                    self.client.get(reverse("flow_edit", args=[self.flow.code])).status_code, status
                )
        response = self.save(five_nodes(), self.flow.revision, user=self.operator)
        self.assertEqual(response.status_code, 403)
        self.assertEqual(
            self.client.post(reverse("flow_publish", args=[self.flow.code])).status_code, 403
        )

    def test_other_organizations_flows_are_404(self):
        self.login(self.admin)
        self.assertEqual(
            self.client.get(reverse("flow_edit", args=[self.secret.code])).status_code, 404
        )
        self.assertEqual(
            self.client.get(reverse("flow_export", args=[self.secret.code])).status_code, 404
        )

    def test_wrong_methods_are_405(self):
        self.login(self.admin)
        self.assertEqual(
            self.client.get(reverse("flow_save", args=[self.flow.code])).status_code, 405
        )
        self.assertEqual(self.client.post(reverse("flow_list")).status_code, 405)

    def test_the_editor_page_has_the_canvas_library_and_vendored_drawflow(self):
        self.login(self.admin)
        response = self.client.get(reverse("flow_edit", args=[self.flow.code]))
        self.assertContains(response, 'id="flow-canvas"')
        self.assertContains(response, "vendor/drawflow/drawflow.min.js")
        self.assertContains(response, "Test in the sandbox phone")
        self.assertIn("handoff", response.context["catalog"])
        self.assertIn(b'id="flow-editor"', response.content)

    def test_save_with_the_loaded_revision_then_a_stale_one_is_409(self):
        draft = five_nodes()
        draft["nodes"][1]["props"]["text"] = "Oi!"
        response = self.save(draft, self.flow.revision)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["revision"], self.flow.revision + 1)
        stale = self.save(five_nodes(), self.flow.revision)
        self.assertEqual(stale.status_code, 409)
        self.assertIn("Someone else saved this flow meanwhile", stale.json()["error"])
        self.flow.refresh_from_db()
        self.assertEqual(self.flow.draft["nodes"][1]["props"]["text"], "Oi!")

    def test_a_bad_draft_is_400_naming_the_node_and_not_saved(self):
        draft = five_nodes()
        draft["nodes"][2]["props"]["options"] = ["Um título de botão longo demais"]
        response = self.save(draft, self.flow.revision)
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["problems"][0]["node"], "menu")
        self.assertIn("WhatsApp allows 20", response.json()["error"])
        bad = self.client.post(
            reverse("flow_save", args=[self.flow.code]), "not json", content_type="application/json"
        )
        self.assertEqual(bad.status_code, 400)
        self.assertIn("error", bad.json())

    def test_publish_and_its_refusal(self):
        self.login(self.admin)
        url = reverse("flow_publish", args=[self.flow.code])
        response = self.client.post(url, HTTP_ACCEPT="application/json")
        self.assertEqual(response.json()["version"], 1)
        draft = five_nodes()
        draft["edges"] = []
        self.save(draft, Flow.objects.get(pk=self.flow.pk).revision)
        refused = self.client.post(url, HTTP_ACCEPT="application/json")
        self.assertEqual(refused.status_code, 400)
        self.assertIn("Connect the start to the first step", refused.json()["error"])

    def test_export_then_import_and_a_bad_import_saves_nothing(self):
        self.login(self.admin)
        exported = self.client.get(reverse("flow_export", args=[self.flow.code]))
        self.assertEqual(exported["Content-Disposition"], 'attachment; filename="agendamento.json"')
        upload = SimpleUploadedFile("a.json", exported.content, content_type="application/json")
        response = self.client.post(reverse("flow_import"), {"file": upload})
        copy = Flow.objects.filter(organization=self.org).latest("created_at")
        self.assertRedirects(response, reverse("flow_edit", args=[copy.code]))
        before = Flow.objects.count()
        data = json.loads(exported.content)
        data["definition"]["nodes"][3]["type"] = "teleport"
        upload = SimpleUploadedFile(
            "b.json", json.dumps(data).encode(), content_type="application/json"
        )
        response = self.client.post(reverse("flow_import"), {"file": upload}, follow=True)
        self.assertContains(response, "Nothing was imported: node email: Unknown node type")
        self.assertEqual(Flow.objects.count(), before)

    def test_check_returns_problems_without_saving(self):
        self.login(self.operator)
        draft = five_nodes()
        draft["nodes"].append({"id": "lost", "type": "end", "props": {}})
        response = self.client.post(
            reverse("flow_check", args=[self.flow.code]),
            json.dumps({"definition": draft}),
            content_type="application/json",
        )
        self.assertIn(
            definition.Problem(
                "lost", "No path from the start reaches this node.", False
            ).as_dict(),
            response.json()["problems"],
        )


class RunAdminTests(BaseTestCase):
    def test_an_organization_admin_inspects_only_their_runs_read_only(self):
        from flows.models import FlowRun

        self.admin.is_staff = True
        self.admin.save()
        flow = services.flow_create(organization=self.org, name="Agendamento", draft=five_nodes())
        version = services.flow_publish(flow=flow)
        run = FlowRun.objects.create(
            organization=self.org, flow=flow, version=version, chat=self.other_chat, node="menu"
        )
        secret_flow = services.flow_create(
            organization=self.other_org, name="Segredo", draft=five_nodes()
        )
        services.flow_publish(flow=secret_flow)
        self.login(self.admin)
        response = self.client.get(reverse("admin:flows_flowrun_changelist"))
        self.assertContains(response, f"/{run.pk}/change/")
        self.assertNotContains(response, "Segredo")
        detail = self.client.get(reverse("admin:flows_flowrun_change", args=[run.pk]))
        self.assertEqual(detail.status_code, 200)
        self.assertNotContains(detail, 'name="_save"')
