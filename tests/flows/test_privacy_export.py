"""LGPD: a contact's export includes their flow runs — the answers captured and the path
taken — and nothing of other contacts' runs."""

from reports import privacy
from tests.flows.helpers import CUSTOMER, FlowTestCase


class FlowRunExportTests(FlowTestCase):
    def test_the_export_lists_the_runs_answers_and_steps(self):
        self.published_flow()
        first = self.receive("menu", name="Maria Souza")
        chat = first.chat
        menu = self.sent(chat)[-1]
        button = menu.content["interactive"]["action"]["buttons"][0]["reply"]
        self.tap(button["id"], "Limpeza")
        self.receive("maria@example.com")
        self.receive("menu", wa_id="5511900000999")  # someone else's run

        data, _files = privacy.contact_export_data(chat.contact)
        (run,) = data["flow_runs"]
        self.assertEqual(
            (run["flow"], run["version"], run["status"]), ("Agendamento", 1, "completed")
        )
        self.assertEqual(run["chat"], chat.code)
        steps = [(s["node"], s["took"]) for s in run["steps"]]
        self.assertIn(("menu", "opt1"), steps)
        self.assertIn(("email", "next"), steps)
        self.assertTrue(any("Limpeza" in s["detail"] for s in run["steps"]))
        self.assertEqual(chat.contact.wa_id, CUSTOMER)
        # The downloadable ZIP carries it too.
        import io
        import json
        import zipfile

        archive = zipfile.ZipFile(
            io.BytesIO(privacy.contact_export(contact=chat.contact, actor=self.admin))
        )
        exported = json.loads(archive.read("contact.json"))
        self.assertEqual(exported["flow_runs"][0]["flow"], "Agendamento")
