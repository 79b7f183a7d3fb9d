import io

import docx
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse

from assistants import knowledge, services
from assistants.models import AISettings, Assistant, KnowledgeChunk, KnowledgeSource
from inbox.models import Message
from tests.assistants.helpers import AssistantTestCase

CLINIC = """Horário de funcionamento: de segunda a sexta, das 8h às 18h. Aos sábados, das 8h às 12h.

Preço da limpeza dental (profilaxia): R$ 180,00. Clareamento a laser: R$ 900,00.

Estacionamento: temos convênio com o estacionamento da Rua das Flores, 120.

Convênios aceitos: Amil Dental, OdontoPrev e SulAmérica Odonto."""


def tiny_pdf(text: str) -> bytes:
    """A one-page PDF with ``text`` in Helvetica, written by hand (no PDF writer needed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def tiny_docx(*paragraphs: str) -> bytes:
    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


class ExtractionTests(AssistantTestCase):
    def test_it_extracts_pdf_docx_and_markdown(self):
        self.assertIn(
            "Implante", knowledge.extract_text("a.pdf", tiny_pdf("Implante dentario R$ 3500"))
        )
        self.assertIn(
            "Ortodontia", knowledge.extract_text("b.docx", tiny_docx("Ortodontia", "Aparelho"))
        )
        self.assertEqual(
            knowledge.extract_text("c.md", "# Título\nTexto".encode()), "# Título\nTexto"
        )

    def test_it_refuses_unknown_and_empty_files(self):
        from django.core.exceptions import ValidationError

        with self.assertRaises(ValidationError):
            knowledge.extract_text("x.exe", b"MZ")
        with self.assertRaises(ValidationError):
            knowledge.extract_text("x.docx", b"not a zip")

    def test_it_chunks_long_text_without_losing_words(self):
        text = " ".join(f"palavra{i}." for i in range(600))
        chunks = knowledge.chunk_text(text, size=200)
        self.assertTrue(all(len(c) <= 200 for c in chunks))
        self.assertEqual(" ".join(chunks).split(), text.split())


class RetrievalTests(AssistantTestCase):
    def add_clinic_knowledge(self):
        services.knowledge_add(
            assistant=self.assistant, kind="text", title="Guia da clínica", text=CLINIC
        )
        services.knowledge_add(
            assistant=self.assistant, kind="faq", title="Perguntas",
            faq=services.parse_faq("P: Vocês atendem crianças?\nR: Sim, temos odontopediatria."),
        )  # fmt: skip

    def test_it_finds_the_passage_that_answers_lexically(self):
        self.add_clinic_knowledge()
        hits = knowledge.search(self.assistant, "qual o preço da limpeza?", mode="lexical")
        self.assertIn("R$ 180,00", hits[0].chunk.text)
        hits = knowledge.search(self.assistant, "atendem criança", mode="lexical")
        self.assertEqual(hits[0].source_title, "Perguntas")
        self.assertEqual(knowledge.search(self.assistant, "xyzzy", mode="lexical"), [])

    def test_it_embeds_chunks_through_the_api_and_ranks_by_similarity(self):
        self.add_clinic_knowledge()
        self.assertTrue(KnowledgeChunk.objects.filter(embedding__isnull=False).exists())
        provider = services.provider_for_organization(self.org.pk)
        hits = knowledge.search(
            self.assistant, "convênio Amil", mode="embedding", provider=provider,
            embedding_model="text-embedding-3-small",
        )  # fmt: skip
        self.assertIn("Amil", hits[0].chunk.text)

    def test_it_never_retrieves_another_assistants_knowledge(self):
        other = Assistant.objects.create(organization=self.other_org, name="Bob bot")
        services.knowledge_add(
            assistant=other, kind="text", title="Segredo", text="limpeza secreta do Bob"
        )
        self.add_clinic_knowledge()
        texts = [h.chunk.text for h in knowledge.search(self.assistant, "limpeza secreta Bob")]
        self.assertFalse(any("Bob" in t for t in texts))

    def test_removing_a_source_removes_it_from_the_index(self):
        self.add_clinic_knowledge()
        KnowledgeSource.objects.get(title="Perguntas").delete()
        self.assertEqual(knowledge.search(self.assistant, "crianças", mode="lexical"), [])

    def test_the_reply_records_the_sources_it_was_given(self):
        self.add_clinic_knowledge()
        chat = self.ai_chat()
        self.stub.script({"content": "A limpeza custa R$ 180,00."})
        self.receive("Quanto custa a limpeza?")
        body = self.stub.chat_requests()[-1]
        self.assertIn("R$ 180,00", body["messages"][1]["content"])
        self.assertIn('source="Guia da clínica"', body["messages"][1]["content"])
        reply = Message.objects.get(chat=chat, author_type=Message.Author.ASSISTANT)
        self.assertEqual(reply.content["assistant"]["sources"][0]["source"], "Guia da clínica")


@override_settings(OPENAI_API_KEY="")
class OfflineProviderTests(AssistantTestCase):
    def setUp(self):
        super().setUp()
        AISettings.objects.filter(organization=self.org).update(api_key="")

    def test_it_answers_from_knowledge_without_a_key(self):
        services.knowledge_add(assistant=self.assistant, kind="text", title="Guia", text=CLINIC)
        chat = self.ai_chat()
        self.receive("Vocês aceitam o convênio Amil?")
        reply = Message.objects.get(chat=chat, author_type=Message.Author.ASSISTANT)
        self.assertIn("Amil Dental", reply.text)
        self.assertTrue(reply.content["assistant"]["offline"])
        self.assertEqual(self.stub.requests, [])

    def test_it_hands_off_when_nothing_in_the_knowledge_matches(self):
        chat = self.ai_chat()
        self.receive("Qual a previsão do tempo em Marte?")
        chat.refresh_from_db()
        self.assertFalse(chat.ai_enabled)

    def test_the_knowledge_page_uploads_a_file_and_says_offline(self):
        self.login(self.manager)
        url = reverse("knowledge_add", args=[self.assistant.code])
        upload = SimpleUploadedFile("precos.docx", tiny_docx("Clareamento custa R$ 900."))
        response = self.client.post(url, {"kind": "file", "upload": upload})
        self.assertRedirects(response, reverse("assistant_detail", args=[self.assistant.code]))
        page = self.client.get(reverse("assistant_detail", args=[self.assistant.code]))
        self.assertContains(page, "precos.docx")
        self.assertContains(page, "data-offline")
        self.assertEqual(
            knowledge.search(self.assistant, "clareamento")[0].source_title, "precos.docx"
        )
