"""Flows are versioned data: validation names the node, imports save nothing when wrong,
published versions never change, and two editors do not overwrite each other."""

from flows import definition, services
from flows.models import Flow, FlowVersion
from tests.base import BaseTestCase
from tests.flows.helpers import five_nodes


def problems(data, **kwargs):
    return [(p.node, p.message) for p in definition.check(data, **kwargs) if p.blocking]


class ValidationTests(BaseTestCase):
    def test_it_accepts_the_five_node_flow(self):
        self.assertEqual(problems(five_nodes(), for_publish=True), [])

    def test_it_names_an_unknown_node_type(self):
        data = five_nodes()
        data["nodes"][2]["type"] = "teleport"
        self.assertEqual(problems(data), [("menu", 'Unknown node type "teleport".')])

    def test_it_enforces_whatsapp_button_limits_at_edit_time(self):
        data = five_nodes()
        data["nodes"][2]["props"]["options"] = ["A very long button title", "B", "C", "D"]
        found = problems(data)
        self.assertIn(("menu", "WhatsApp allows at most 3 reply buttons."), found)
        self.assertIn(
            ("menu", 'Button "A very long button title" is 24 characters; WhatsApp allows 20.'),
            found,
        )

    def test_it_refuses_oversized_texts_and_long_list_menus(self):
        data = five_nodes()
        data["nodes"][1]["props"]["text"] = "x" * 5000
        data["nodes"].append(
            {
                "id": "lst",
                "type": "list",
                "props": {"text": "t", "button": "Ver", "options": [str(i) for i in range(11)]},
            }
        )
        found = problems(data)
        self.assertIn(("welcome", "Text is 5000 characters; WhatsApp allows 4096."), found)
        self.assertIn(("lst", "WhatsApp allows at most 10 rows in a list."), found)

    def test_a_loop_without_a_question_or_wait_is_an_error_naming_its_nodes(self):
        data = five_nodes()
        data["nodes"].append({"id": "again", "type": "message", "props": {"text": "de novo"}})
        data["edges"].append({"from": "thanks", "port": "next", "to": "again"})
        data["edges"].append({"from": "again", "port": "next", "to": "thanks"})
        [(node, message)] = problems(data)
        self.assertEqual(node, "thanks")
        self.assertIn("thanks → again → thanks", message)

    def test_a_loop_through_a_question_is_fine(self):
        data = five_nodes()
        data["edges"].append({"from": "thanks", "port": "next", "to": "menu"})
        self.assertEqual(problems(data, for_publish=True), [])

    def test_it_requires_a_start_and_a_connected_one_to_publish(self):
        data = five_nodes()
        data["nodes"] = data["nodes"][1:]
        data["edges"] = data["edges"][1:]
        self.assertEqual(problems(data), [("", "The flow has no start node.")])
        draft = five_nodes()
        draft["edges"] = draft["edges"][1:]
        self.assertEqual(problems(draft), [])  # a draft may be incomplete
        self.assertEqual(
            problems(draft, for_publish=True), [("start", "Connect the start to the first step.")]
        )

    def test_dangling_edges_and_unreachable_nodes_are_marked(self):
        data = five_nodes()
        data["nodes"].append({"id": "lost", "type": "end", "props": {}})
        data["edges"].append({"from": "menu", "port": "opt3", "to": "thanks"})
        self.assertEqual(problems(data), [("menu", 'It has no output "opt3".')])
        data["edges"].pop()
        warnings = [(p.node, p.message) for p in definition.check(data) if not p.blocking]
        self.assertIn(("lost", "No path from the start reaches this node."), warnings)

    def test_questions_say_where_the_answer_goes(self):
        data = five_nodes()
        data["nodes"][3]["props"]["save_to"] = "somewhere"
        self.assertEqual(
            problems(data),
            [("email", 'Say where to save the answer: "contact.<attribute>" or "vars.<name>".')],
        )


class VersionTests(BaseTestCase):
    def test_publish_freezes_a_version_and_later_edits_do_not_change_it(self):
        flow = services.flow_create(organization=self.org, name="Menu", draft=five_nodes())
        v1 = services.flow_publish(flow=flow, user=self.admin)
        changed = five_nodes()
        changed["nodes"][1]["props"]["text"] = "Oi de novo"
        services.draft_save(flow=flow, draft=changed, revision=flow.revision)
        v1.refresh_from_db()
        self.assertEqual(v1.definition["nodes"][1]["props"]["text"], "Olá {{contact.first_name}}!")
        v2 = services.flow_publish(flow=flow, user=self.admin)
        self.assertEqual((v1.number, v2.number), (1, 2))
        services.flow_rollback(flow=flow, version=v1)
        flow.refresh_from_db()
        self.assertEqual(flow.published, v1)
        self.assertEqual(flow.draft["nodes"][1]["props"]["text"], "Olá {{contact.first_name}}!")

    def test_a_stale_revision_is_refused_and_nothing_is_overwritten(self):
        flow = services.flow_create(organization=self.org, name="Menu", draft=five_nodes())
        loaded = flow.revision
        first = five_nodes()
        first["nodes"][1]["props"]["text"] = "Ana's edit"
        services.draft_save(flow=flow, draft=first, revision=loaded)
        second = five_nodes()
        second["nodes"][1]["props"]["text"] = "Bruno's edit"
        with self.assertRaises(services.StaleRevision) as caught:
            services.draft_save(flow=flow, draft=second, revision=loaded)
        self.assertIn("Someone else saved this flow meanwhile", str(caught.exception))
        flow.refresh_from_db()
        self.assertEqual(flow.draft["nodes"][1]["props"]["text"], "Ana's edit")

    def test_publishing_an_incomplete_draft_is_refused(self):
        draft = five_nodes()
        draft["edges"] = []
        flow = services.flow_create(organization=self.org, name="Menu", draft=draft)
        with self.assertRaises(definition.DefinitionError) as caught:
            services.flow_publish(flow=flow)
        self.assertIn("node start: Connect the start to the first step.", str(caught.exception))
        self.assertFalse(FlowVersion.objects.exists())


class ImportExportTests(BaseTestCase):
    def test_an_export_imports_as_the_same_flow(self):
        flow = services.flow_create(
            organization=self.org, name="Menu", description="d", draft=five_nodes()
        )
        exported = services.flow_export(flow=flow)
        self.assertEqual(exported["porfin_flow"], definition.SCHEMA)
        copy = services.flow_import(organization=self.org, data=exported, user=self.admin)
        self.assertEqual((copy.name, copy.draft), ("Menu", flow.draft))
        self.assertIsNone(copy.published)

    def test_bad_imports_name_the_problem_and_save_nothing(self):
        before = Flow.objects.count()
        cases = {
            "teleport": (
                'Unknown node type "teleport"',
                lambda d: d["nodes"][2].update(type="teleport"),
            ),
            "cycle": (
                "loop without a question or a wait",
                lambda d: (
                    d["nodes"].append({"id": "again", "type": "message", "props": {"text": "?"}}),
                    d["edges"].append({"from": "thanks", "port": "next", "to": "again"}),
                    d["edges"].append({"from": "again", "port": "next", "to": "thanks"}),
                ),
            ),
            "oversized": (
                "node welcome: Text is 5000 characters",
                lambda d: d["nodes"][1]["props"].update(text="x" * 5000),
            ),
            "no start": (
                "The flow has no start node",
                lambda d: d.update(nodes=d["nodes"][1:], edges=d["edges"][1:]),
            ),
        }
        for name, (expected, spoil) in cases.items():
            with self.subTest(name):
                data = five_nodes()
                spoil(data)
                with self.assertRaises(definition.DefinitionError) as caught:
                    services.flow_import(
                        organization=self.org,
                        data=definition.export(name="X", description="", definition=data),
                    )
                self.assertIn(expected, str(caught.exception))
        with self.assertRaises(definition.DefinitionError) as caught:
            services.flow_import(organization=self.org, data={"porfin_flow": 99, "name": "x"})
        self.assertIn("Unsupported flow schema version 99", str(caught.exception))
        self.assertEqual(Flow.objects.count(), before)

    def test_duplicate_copies_the_draft_unpublished(self):
        flow = services.flow_create(organization=self.org, name="Menu", draft=five_nodes())
        services.flow_publish(flow=flow)
        copy = services.flow_duplicate(flow=flow)
        self.assertEqual(
            (copy.name, copy.draft, copy.published), ("Copy of Menu", flow.draft, None)
        )
