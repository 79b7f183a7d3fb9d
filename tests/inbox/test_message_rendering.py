"""Every kind of timeline entry renders what a person expects to see, and nothing unsafe."""

import tempfile
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation

from inbox import services
from inbox.models import Media, Message
from inbox.templatetags.inbox_tags import day_label, whatsapp_format
from integrations.whatsapp import payloads
from tests.base import BaseTestCase

WHEN = datetime(2026, 3, 10, 15, 4, tzinfo=UTC)  # 12:04 in São Paulo


class Page(HTMLParser):
    """Collects elements (tag, attrs) and top-level element count of an HTML fragment."""

    BLOCK = {"p", "div", "li", "td", "th", "dt", "dd", "br", "tr"}
    VOID = {"img", "br", "input", "source", "meta", "link", "hr", "path", "circle"}

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.depth = 0
        self.roots = 0
        self.text_parts: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag in self.BLOCK:
            self.text_parts.append(" ")
        if self.depth == 0:
            self.roots += 1
        if tag not in self.VOID:
            self.depth += 1

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if self.depth == 0:
            self.roots += 1

    def handle_endtag(self, tag):
        if tag not in self.VOID:
            self.depth -= 1

    def handle_data(self, data):
        self.text_parts.append(data)

    @property
    def text(self) -> str:
        return " ".join("".join(self.text_parts).split())

    def find(self, tag, **attrs) -> list[dict]:
        return [
            a
            for t, a in self.elements
            if t == tag and all(a.get(k.rstrip("_")) == v for k, v in attrs.items())
        ]


def assert_safe(testcase, html: str) -> Page:
    page = Page(html)
    testcase.assertEqual(page.roots, 1, "one root element, so a live update can swap it")
    for tag, attrs in page.elements:
        testcase.assertNotEqual(tag, "script")
        for name, value in attrs.items():
            testcase.assertFalse(name.startswith("on"), f"event handler attribute {name}")
            if name in ("href", "src"):
                testcase.assertRegex(
                    value or "", r"^(https?://|/inbox/media/[0-9a-f-]{36}/$|#msg-|tel:|mailto:)"
                )
    return page


class RenderingTestCase(BaseTestCase):
    def setUp(self):
        translation.activate("en")
        self.addCleanup(translation.deactivate)
        timezone.activate("America/Sao_Paulo")
        self.addCleanup(timezone.deactivate)
        self.chat = self.other_chat
        self.seq = 0

    # --- building messages the way the app stores them ----------------------------------

    def receive(self, message_type, body, **extra) -> Message:
        """Store a customer's message through the real webhook parser and service."""
        self.seq += 1
        raw = payloads.build_inbound_message(
            wamid=extra.pop("wamid", f"wamid.in.{self.seq}"),
            from_wa_id=self.chat.contact.wa_id,
            message_type=message_type,
            content=body,
            timestamp=str(int(WHEN.timestamp())),
            **extra,
        )
        body = payloads.build_webhook(
            "waba",
            [
                payloads.build_messages_change(
                    phone_number_id=self.number.phone_number_id,
                    display_phone_number="+55 11 4000-0000",
                    contacts=[
                        payloads.build_contact(wa_id=self.chat.contact.wa_id, profile_name="Cli")
                    ],
                    messages=[raw],
                )
            ],
        )
        (event,) = payloads.parse_webhook(body)
        return services.message_receive(number=self.number, inbound=event)

    def sent(self, message_type, body, **fields) -> Message:
        """An outbound message as ``message_send`` stores it (content is what we sent)."""
        fields.setdefault("author_type", Message.Author.USER)
        fields.setdefault("author_user", self.operator)
        fields.setdefault("status", Message.Status.SENT)
        text = fields.pop("text", services._outbound_text(message_type, body))
        return Message.objects.create(
            organization=self.org,
            chat=self.chat,
            number=self.number,
            direction=Message.Direction.OUTBOUND,
            type=message_type,
            text=text,
            content={"type": message_type, message_type: body},
            timestamp=WHEN,
            **fields,
        )

    def stored_media(self, message, **fields) -> Media:
        defaults = {"mime_type": "image/jpeg", "size": 245_760, "file": "media/2026/03/photo.jpg"}
        return Media.objects.create(organization=self.org, message=message, **(defaults | fields))

    def render(self, message, **context) -> str:
        message = (
            Message.objects.select_related("reply_to", "author_user")
            .prefetch_related("media")
            .get(pk=message.pk)
        )
        return render_to_string("inbox/_message.html", {"message": message, **context})

    def page(self, message, **context) -> Page:
        return assert_safe(self, self.render(message, **context))


class TextTests(RenderingTestCase):
    def test_it_shows_a_script_body_as_text(self):
        message = self.receive("text", payloads.build_text("<script>alert(1)</script> oi"))
        html = self.render(message)
        self.assertNotIn("<script", html)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt; oi", html)
        self.assertIn("<script>alert(1)</script> oi", self.page(message).text)

    def test_it_renders_whatsapp_formatting(self):
        message = self.receive(
            "text",
            payloads.build_text("*Confirmado* para _amanhã_ ~hoje~\n```sala 2``` e `andar 1`"),
        )
        html = self.render(message)
        self.assertIn("<strong>Confirmado</strong>", html)
        self.assertIn("<em>amanhã</em>", html)
        self.assertIn("<del>hoje</del>", html)
        self.assertIn('<code class="wa-mono">sala 2</code>', html)
        self.assertIn("<code>andar 1</code>", html)
        self.assertIn("<del>hoje</del><br>", html)

    def test_it_links_web_addresses_safely(self):
        message = self.receive(
            "text",
            payloads.build_text(
                "Mapa: https://clinica.test/a?b=1&c=2. "
                'Ruim: https://evil.test/"onmouseover="alert(1) e javascript:alert(2)'
            ),
        )
        page = self.page(message)
        links = page.find("a")
        self.assertEqual(
            [a["href"] for a in links], ["https://clinica.test/a?b=1&c=2", "https://evil.test/"]
        )
        for link in links:
            self.assertEqual(link["target"], "_blank")
            self.assertEqual(link["rel"], "noopener noreferrer nofollow")
        self.assertIn('onmouseover="alert(1) e javascript:alert(2)', page.text)

    def test_it_identifies_the_entry_and_shows_local_time(self):
        message = self.receive("text", payloads.build_text("Oi"))
        page = self.page(message)
        (root,) = page.find("div", id=f"msg-{message.code}")
        self.assertEqual(root["data-message"], str(message.code))
        self.assertIn("msg-in", root["class"])
        (time,) = page.find("time")
        self.assertEqual(time["datetime"], "2026-03-10T12:04:00-03:00")
        self.assertIn("12:04", page.text)

    def test_it_adds_the_oob_attribute_when_asked(self):
        message = self.receive("text", payloads.build_text("Oi"))
        (root,) = self.page(message, oob="true").find("div", id=f"msg-{message.code}")
        self.assertEqual(root["hx-swap-oob"], "true")


class MediaTests(RenderingTestCase):
    def test_it_shows_a_stored_image_inline_with_its_caption(self):
        message = self.receive(
            "image",
            payloads.build_media(
                media_id="m1", mime_type="image/jpeg", sha256="x", caption="Raio-X *novo*"
            ),
        )
        Media.objects.filter(message=message).update(file="media/2026/03/raio.jpg", size=1000)
        page = self.page(message)
        (img,) = page.find("img")
        media = Media.objects.get(message=message)
        # The authenticated view's URL, never the storage key
        self.assertEqual(img["src"], f"/inbox/media/{media.code}/")
        self.assertEqual(img["loading"], "lazy")
        self.assertEqual(img["alt"], "Raio-X *novo*")
        self.assertIn("<strong>novo</strong>", self.render(message))

    def test_it_says_an_image_is_downloading_until_stored(self):
        message = self.receive(
            "image", payloads.build_media(media_id="m2", mime_type="image/jpeg", sha256="x")
        )
        page = self.page(message)
        self.assertEqual(page.find("img"), [])
        self.assertIn("Image downloading…", page.text)

    def test_it_shows_a_sticker_without_a_bubble(self):
        message = self.receive(
            "sticker",
            payloads.build_media(media_id="s1", mime_type="image/webp", sha256="x", animated=False),
        )
        Media.objects.filter(message=message).update(file="media/s.webp")
        (img,) = self.page(message).find("img")
        self.assertEqual(img["alt"], "Sticker")
        self.assertIn("msg-sticker", img["class"])

    def test_it_plays_video_and_voice_notes_with_their_transcript(self):
        video = self.receive(
            "video",
            payloads.build_media(media_id="v1", mime_type="video/mp4", sha256="x", caption="Veja"),
        )
        Media.objects.filter(message=video).update(file="media/v.mp4")
        (player,) = self.page(video).find("video")
        self.assertIn("controls", player)
        self.assertEqual(player["src"], Media.objects.get(message=video).url)

        voice = self.receive(
            "audio",
            payloads.build_media(
                media_id="a1", mime_type="audio/ogg; codecs=opus", sha256="x", voice=True
            ),
        )
        Media.objects.filter(message=voice).update(file="media/a.ogg")
        voice.content["transcript"] = "Queria remarcar a consulta"
        voice.save(update_fields=["content"])
        page = self.page(voice)
        (audio,) = page.find("audio")
        self.assertIn("controls", audio)
        self.assertIn("Voice message", page.text)
        self.assertIn("Transcript Queria remarcar a consulta", page.text)

    def test_it_offers_a_document_with_name_and_size(self):
        message = self.receive(
            "document",
            payloads.build_media(
                media_id="d1",
                mime_type="application/pdf",
                sha256="x",
                filename="exame.pdf",
                caption="Resultado",
            ),
        )
        Media.objects.filter(message=message).update(file="media/exame.pdf", size=2_202_009)
        page = self.page(message)
        self.assertIn("exame.pdf", page.text)
        self.assertIn("2.1 MB", page.text)
        self.assertIn("application/pdf", page.text)
        (download,) = page.find("a", download="exame.pdf")
        self.assertEqual(download["href"], Media.objects.get(message=message).url)
        self.assertIn("Resultado", page.text)

    def test_it_shows_an_image_we_sent_by_link(self):
        message = self.sent(
            "image", {"link": "https://cdn.clinica.test/promo.png", "caption": "Promo"}
        )
        (img,) = self.page(message).find("img")
        self.assertEqual(img["src"], "https://cdn.clinica.test/promo.png")
        self.assertEqual(img["alt"], "Promo")

    def test_it_never_uses_an_unsafe_link_as_a_source(self):
        message = self.sent("image", {"link": "javascript:alert(1)"}, text="")
        page = self.page(message)
        self.assertEqual(page.find("img"), [])
        self.assertIn("Image", page.text)


class StructuredTests(RenderingTestCase):
    def test_it_shows_a_location_with_a_map_link(self):
        message = self.receive(
            "location",
            payloads.build_location(
                latitude=-23.5614141,
                longitude=-46.6558819,
                name="Clínica Paulista",
                address="Av. Paulista, 1000",
            ),
        )
        page = self.page(message)
        self.assertIn("Clínica Paulista", page.text)
        self.assertIn("Av. Paulista, 1000", page.text)
        self.assertIn("-23.561414, -46.655882", page.text)
        (link,) = page.find("a", target="_blank")
        self.assertEqual(
            link["href"],
            "https://www.openstreetmap.org/?mlat=-23.561414&mlon=-46.655882#map=16/-23.561414/-46.655882",
        )

    def test_it_shows_contact_cards(self):
        message = self.receive(
            "contacts",
            [
                payloads.build_contact_card(
                    formatted_name="Dra. Rita Souza",
                    phone="+55 11 98888-7777",
                    wa_id="5511988887777",
                ),
                payloads.build_contact_card(formatted_name="Recepção"),
            ],
        )
        page = self.page(message)
        self.assertIn("Dra. Rita Souza", page.text)
        self.assertIn("+55 11 98888-7777", page.text)
        self.assertIn("Recepção", page.text)
        self.assertEqual(page.find("a")[0]["href"], "tel:+5511988887777")

    def test_it_shows_the_buttons_and_list_we_sent(self):
        buttons = self.sent(
            "interactive",
            {
                "type": "button",
                "header": {"type": "text", "text": "Consulta"},
                "body": {"text": "Confirma *amanhã* às 10h?"},
                "footer": {"text": "Clínica Alice"},
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": "yes", "title": "Confirmar"}},
                        {"type": "reply", "reply": {"id": "no", "title": "Remarcar"}},
                    ]
                },
            },
        )
        page = self.page(buttons)
        for text in (
            "Consulta",
            "Confirma amanhã às 10h?",
            "Clínica Alice",
            "Confirmar",
            "Remarcar",
        ):
            self.assertIn(text, page.text)
        self.assertIn("<strong>amanhã</strong>", self.render(buttons))

        listing = self.sent(
            "interactive",
            {
                "type": "list",
                "body": {"text": "Escolha o horário"},
                "action": {
                    "button": "Horários",
                    "sections": [
                        {
                            "title": "Manhã",
                            "rows": [{"id": "9", "title": "09:00", "description": "Dr. Paulo"}],
                        },
                        {"title": "Tarde", "rows": [{"id": "14", "title": "14:00"}]},
                    ],
                },
            },
        )
        page = self.page(listing)
        for text in ("Horários", "Manhã", "09:00", "Dr. Paulo", "Tarde", "14:00"):
            self.assertIn(text, page.text)

        cta = self.sent(
            "interactive",
            {
                "type": "cta_url",
                "body": {"text": "Veja seu exame"},
                "action": {
                    "name": "cta_url",
                    "parameters": {"display_text": "Abrir", "url": "https://clinica.test/exame"},
                },
            },
        )
        (link,) = self.page(cta).find("a", href="https://clinica.test/exame")
        self.assertEqual(link["rel"], "noopener noreferrer nofollow")

    def test_it_shows_which_button_or_row_the_customer_tapped(self):
        tapped = self.receive(
            "interactive", payloads.build_button_reply(reply_id="yes", title="Confirmar")
        )
        self.assertIn("Tapped: Confirmar", self.page(tapped).text)
        chosen = self.receive(
            "interactive",
            payloads.build_list_reply(reply_id="9", title="09:00", description="Dr. Paulo"),
        )
        self.assertIn("Tapped: 09:00 Dr. Paulo", self.page(chosen).text)
        template_tap = self.receive(
            "button", payloads.build_template_button(payload="stop", text="Parar promoções")
        )
        self.assertIn("Tapped: Parar promoções", self.page(template_tap).text)
        flow = self.receive(
            "interactive",
            payloads.build_flow_reply(response={"flow_token": "t", "full_name": "Rita"}),
        )
        page = self.page(flow)
        self.assertIn("Submitted a form", page.text)
        self.assertIn("Full name Rita", page.text)
        self.assertNotIn("flow_token", page.text)

    def test_it_fills_template_parameters_into_the_approved_text(self):
        message = self.sent(
            "template",
            {
                "name": "lembrete_consulta",
                "language": {"code": "pt_BR"},
                "components": [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": "Rita <b>"},
                            {"type": "date_time", "date_time": {"fallback_value": "12/03 às 10h"}},
                        ],
                    },
                    {
                        "type": "button",
                        "sub_type": "url",
                        "index": 1,
                        "parameters": [{"type": "text", "text": "abc123"}],
                    },
                ],
            },
            author_type=Message.Author.CAMPAIGN,
            author_user=None,
        )
        approved = {
            "lembrete_consulta": [
                {"type": "HEADER", "format": "TEXT", "text": "Lembrete"},
                {"type": "BODY", "text": "Olá {{1}}, sua consulta é *{{2}}*."},
                {"type": "FOOTER", "text": "Responda SAIR para não receber"},
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {"type": "QUICK_REPLY", "text": "Confirmar"},
                        {
                            "type": "URL",
                            "text": "Ver detalhes",
                            "url": "https://clinica.test/c/{{1}}",
                        },
                    ],
                },
            ]
        }
        html = self.render(message, templates_by_name=approved)
        page = assert_safe(self, html)
        self.assertIn("Olá Rita <b>, sua consulta é 12/03 às 10h.", page.text)
        self.assertIn("<strong>12/03 às 10h</strong>", html)
        self.assertNotIn("<b>", html)
        self.assertIn("Lembrete", page.text)
        self.assertIn("Responda SAIR para não receber", page.text)
        self.assertEqual(page.find("a")[0]["href"], "https://clinica.test/c/abc123")
        self.assertIn("Campaign", page.text)

    def test_it_lists_template_parameters_when_the_template_is_unknown(self):
        message = self.sent(
            "template",
            {
                "name": "boas_vindas",
                "language": {"code": "pt_BR"},
                "components": [{"type": "BODY", "parameters": [{"type": "text", "text": "Rita"}]}],
            },
        )
        page = self.page(message)
        self.assertIn("Template “boas_vindas” · pt_BR", page.text)
        self.assertIn("Parameters: Rita", page.text)

    def test_it_itemises_an_order(self):
        message = self.receive(
            "order",
            {
                "catalog_id": "1",
                "text": "Entregar na recepção",
                "product_items": [
                    {
                        "product_retailer_id": "LIMPEZA",
                        "quantity": 2,
                        "item_price": 150,
                        "currency": "BRL",
                    },
                    {
                        "product_retailer_id": "CLAREAMENTO",
                        "quantity": 1,
                        "item_price": 800.5,
                        "currency": "BRL",
                    },
                ],
            },
        )
        page = self.page(message)
        self.assertIn("LIMPEZA 2 300.00 BRL", page.text)
        self.assertIn("CLAREAMENTO 1 800.50 BRL", page.text)
        self.assertIn("Total 1100.50 BRL", page.text)
        self.assertIn("Entregar na recepção", page.text)

    def test_it_explains_system_and_unsupported_messages(self):
        system = self.receive(
            "system",
            {
                "body": "User A changed from 5511 to 5512",
                "wa_id": "5512",
                "type": "user_changed_number",
            },
        )
        page = self.page(system)
        self.assertIn("The customer changed their WhatsApp number.", page.text)
        self.assertIn("User A changed from 5511 to 5512", page.text)
        self.assertIn("msg-event", page.find("div")[0]["class"])

        unsupported = self.receive(
            "unsupported",
            {"type": "poll"},
            errors=[
                {
                    "code": 131051,
                    "title": "Message type unknown",
                    "message": "Message type unknown",
                    "error_data": {"details": "Message type is currently not supported."},
                }
            ],
        )
        page = self.page(unsupported)
        self.assertIn("This message can't be shown here.", page.text)
        self.assertIn(
            "WhatsApp says: Message type unknown — Message type is currently not supported. (131051)",
            page.text,
        )
        self.assertIn("Original type: poll", page.text)


class OptionalContentTests(RenderingTestCase):
    """The keys a message's content may lack (forwarded, from an ad, edited, reactions): each
    shows when present, and a message without them shows none of them, nor an empty "{}"."""

    def test_forwarded_and_ad_messages_say_so_and_a_plain_one_says_nothing(self):
        forwarded = self.receive(
            "text", payloads.build_text("Veja isto"), context={"forwarded": True}
        )
        many = self.receive(
            "text", payloads.build_text("Corrente"), context={"frequently_forwarded": True}
        )
        from_ad = self.receive(
            "text",
            payloads.build_text("Quero saber o preço"),
            referral={
                "source_url": "https://fb.me/ad1",
                "source_type": "ad",
                "headline": "Clareamento em dezembro",
                "body": "Agende já",
            },
        )
        plain = self.receive("text", payloads.build_text("Bom dia"))

        self.assertIn("Forwarded Veja isto", self.page(forwarded).text)
        self.assertIn("Forwarded many times", self.page(many).text)
        ad = self.page(from_ad).text
        self.assertIn("From an ad Clareamento em dezembro Agende já View ad", ad)
        for message in (plain, from_ad):
            text = self.page(message).text
            self.assertNotIn("Forwarded", text)
        html = self.render(plain)
        for absent in ("Forwarded", "From an ad", "Edited", "msg-reactions", "{}", "is-revoked"):
            self.assertNotIn(absent, html)
        self.assertIn("Bom dia", self.page(plain).text)


class ChangesTests(RenderingTestCase):
    def test_it_shows_reactions_on_the_message_they_react_to(self):
        target = self.sent("text", {"body": "Até amanhã"}, wamid="wamid.out.1")
        self.receive("reaction", payloads.build_reaction(message_id="wamid.out.1", emoji="😮"))
        target.refresh_from_db()
        target.content["reactions"]["business"] = "👍"
        target.save(update_fields=["content"])
        page = self.page(target)
        self.assertIn("The customer reacted 😮", page.text)
        self.assertIn("Your team reacted 👍", page.text)

    def test_it_marks_edits_and_deletions(self):
        original = self.receive("text", payloads.build_text("Às 9h"), wamid="wamid.edit.me")
        self.receive(
            "edit",
            {
                "original_message_id": "wamid.edit.me",
                "message": {"type": "text", "text": {"body": "Às 10h"}},
            },
        )
        page = self.page(original)
        self.assertIn("Às 10h", page.text)
        self.assertNotIn("Às 9h", page.text)
        self.assertIn("Edited", page.text)

        deleted = self.receive("text", payloads.build_text("segredo"), wamid="wamid.delete.me")
        self.receive("revoke", {"original_message_id": "wamid.delete.me"})
        page = self.page(deleted)
        self.assertIn("This message was deleted", page.text)
        self.assertNotIn("segredo", page.text)

    def test_it_quotes_the_message_replied_to(self):
        question = self.receive("text", payloads.build_text("Vocês abrem sábado?"), wamid="wamid.q")
        answer = self.sent(
            "text", {"body": "Sim, até 12h"}, reply_to=question, reply_to_wamid="wamid.q"
        )
        page = self.page(answer)
        (quote,) = page.find("a", href=f"#msg-{question.code}")
        self.assertIn("Customer Vocês abrem sábado? Sim, até 12h", page.text)
        reply = self.receive(
            "text", payloads.build_text("Ótimo"), context={"from": "5511", "id": "wamid.unknown"}
        )
        self.assertIn("Reply to a message that is not in this history", self.page(reply).text)

    def test_it_names_the_teammate_quoted_when_loaded_with_the_reply(self):
        ours = self.sent("text", {"body": "Temos 10h"}, wamid="wamid.ours")
        reply = self.receive(
            "text", payloads.build_text("Fechado"), context={"from": "5511", "id": "wamid.ours"}
        )
        self.assertIn("Team member Temos 10h", self.page(reply).text)
        loaded = (
            Message.objects.select_related("reply_to__author_user", "author_user")
            .prefetch_related("media")
            .get(pk=reply.pk)
        )
        with self.assertNumQueries(0):
            html = render_to_string("inbox/_message.html", {"message": loaded})
        self.assertIn("Otto Operator Temos 10h", Page(html).text)
        self.assertIn(f'href="#msg-{ours.code}"', html)


class StatusAndAuthorTests(RenderingTestCase):
    def test_it_shows_a_tick_per_status(self):
        labels = {"pending": "Sending", "sent": "Sent", "delivered": "Delivered", "read": "Read"}
        for status, label in labels.items():
            page = self.page(self.sent("text", {"body": "Oi"}, status=status))
            (tick,) = [a for a in page.find("span") if "msg-status" in a.get("class", "")]
            self.assertEqual(tick["aria-label"], label)
            self.assertIn(f"is-{status}", tick["class"])

    def test_it_explains_a_failed_send(self):
        message = self.sent(
            "text",
            {"body": "Oi"},
            status=Message.Status.FAILED,
            error_code=131047,
            error_title="Re-engagement message",
            error_details="More than 24 hours have passed since the customer last replied.",
        )
        page = self.page(message)
        (tick,) = [a for a in page.find("span") if "msg-status" in a.get("class", "")]
        self.assertEqual(
            tick["title"],
            "Re-engagement message: More than 24 hours have passed since the customer last replied.",
        )
        self.assertIn("Not delivered: Re-engagement message", page.text)
        self.assertIn("is-failed", page.find("div")[0]["class"])

    def test_it_has_no_ticks_on_customer_messages(self):
        page = self.page(self.receive("text", payloads.build_text("Oi")))
        self.assertFalse([a for a in page.find("span") if "msg-status" in a.get("class", "")])

    def test_it_names_who_sent_each_outbound_message(self):
        self.assertIn("Otto Operator", self.page(self.sent("text", {"body": "a"})).text)
        for author, label in (("assistant", "AI assistant"), ("automation", "Automation")):
            message = self.sent("text", {"body": "a"}, author_type=author, author_user=None)
            self.assertIn(label, self.page(message).text)

    def test_it_marks_notes_as_private(self):
        note = services.note_add(chat=self.chat, author=self.manager, body="Paciente *VIP* <i>")
        page = self.page(note)
        self.assertIn("Private note · only your team sees it", page.text)
        self.assertIn("Mara Manager", page.text)
        self.assertIn("msg-note", page.find("div")[0]["class"])
        self.assertIn("<strong>VIP</strong> &lt;i&gt;", self.render(note))

    def test_it_shows_activities_as_a_centred_line(self):
        services.chat_assign(chat=self.chat, assignee=self.agent, actor=self.manager)
        activity = Message.objects.filter(type=Message.Type.ACTIVITY).latest("id")
        page = self.page(activity)
        self.assertIn("Mara Manager assigned the chat to Ana Agent", page.text)
        self.assertIn("msg-event", page.find("div")[0]["class"])
        self.assertFalse(page.find("span", class_="msg-bubble"))


class TimelineTests(RenderingTestCase):
    def test_it_renders_a_whole_timeline_without_queries(self):
        messages = build_timeline(self)
        timeline = list(
            Message.objects.filter(chat=self.chat)
            .select_related("reply_to", "author_user")
            .prefetch_related("media")
        )
        self.assertGreaterEqual(len(timeline), len(messages))
        with self.assertNumQueries(0):
            for message in timeline:
                render_to_string("inbox/_message.html", {"message": message})

    def test_it_labels_days(self):
        now = timezone.now()
        self.assertEqual(day_label(now), "Today")
        self.assertEqual(day_label(now - timedelta(days=1)), "Yesterday")
        html = render_to_string("inbox/_day_separator.html", {"day": now})
        self.assertIn(">Today</time>", html)


class FormatTests(RenderingTestCase):
    def test_it_formats_like_whatsapp(self):
        cases = {
            "_*ambos*_": "<em><strong>ambos</strong></em>",
            "snake_case_name 2*3*4": "snake_case_name 2*3*4",
            "* não *": "* não *",
            "(veja https://x.test/a_(b)).": '(veja <a href="https://x.test/a_(b)" target="_blank" rel="noopener noreferrer nofollow">https://x.test/a_(b)</a>).',
            "*https://x.test*": '<strong><a href="https://x.test" target="_blank" rel="noopener noreferrer nofollow">https://x.test</a></strong>',
            "`*não*`": "<code>*não*</code>",
            "a & b\nc": "a &amp; b<br>c",
        }
        for source, expected in cases.items():
            self.assertEqual(whatsapp_format(source), expected, source)

    def test_it_keeps_quotes_out_of_attributes(self):
        html = whatsapp_format(
            "https://x.test/'onfocus='alert(1)' www.y.test\"><img src=x onerror=alert(1)>"
        )
        page = Page(html)
        self.assertEqual([t for t, _ in page.elements], ["a", "a"])
        self.assertEqual(
            [a["href"] for _, a in page.elements], ["https://x.test/", "https://www.y.test"]
        )


def build_timeline(case: RenderingTestCase) -> list[Message]:
    """One message of every kind, as the app stores them (used by the tests and the browser check)."""
    made = [
        case.receive(
            "text",
            payloads.build_text(
                "Olá! Queria *marcar* uma consulta para _sexta_ 🙂\nhttps://clinica.test/agenda"
            ),
            wamid="wamid.t1",
        ),
        case.sent(
            "text",
            {"body": "Claro! Temos ~quinta~ sexta às 10h ou 14h.", "preview_url": False},
            status="read",
            wamid="wamid.t2",
        ),
    ]
    made.append(
        case.receive(
            "text", payloads.build_text("Sexta às 10h!"), context={"from": "5511", "id": "wamid.t2"}
        )
    )
    img = case.receive(
        "image",
        payloads.build_media(media_id="i", mime_type="image/png", sha256="x", caption="Meu raio-x"),
    )
    Media.objects.filter(message=img).update(file="media/xray.svg", size=48_000)
    made.append(img)
    made.append(
        case.receive(
            "image", payloads.build_media(media_id="i2", mime_type="image/jpeg", sha256="x")
        )
    )
    sticker = case.receive(
        "sticker", payloads.build_media(media_id="s", mime_type="image/webp", sha256="x")
    )
    Media.objects.filter(message=sticker).update(file="media/sticker.svg")
    made.append(sticker)
    voice = case.receive(
        "audio", payloads.build_media(media_id="a", mime_type="audio/ogg", sha256="x", voice=True)
    )
    Media.objects.filter(message=voice).update(file="media/voice.ogg")
    voice.content["transcript"] = "Posso levar meu filho junto?"
    voice.save(update_fields=["content"])
    made.append(voice)
    video = case.receive(
        "video",
        payloads.build_media(media_id="v", mime_type="video/mp4", sha256="x", caption="Olha isso"),
    )
    Media.objects.filter(message=video).update(file="media/video.mp4")
    made.append(video)
    doc = case.receive(
        "document",
        payloads.build_media(
            media_id="d",
            mime_type="application/pdf",
            sha256="x",
            filename="exame-de-sangue-marco-2026.pdf",
        ),
    )
    Media.objects.filter(message=doc).update(file="media/exame.pdf", size=1_234_567)
    made.append(doc)
    made.append(
        case.receive(
            "location",
            payloads.build_location(
                latitude=-23.5614,
                longitude=-46.6558,
                name="Clínica Paulista",
                address="Av. Paulista, 1000",
            ),
        )
    )
    made.append(
        case.receive(
            "contacts",
            [
                payloads.build_contact_card(
                    formatted_name="Dra. Rita Souza", phone="+55 11 98888-7777"
                )
            ],
        )
    )
    made.append(
        case.sent(
            "interactive",
            {
                "type": "button",
                "body": {"text": "Confirma sexta às 10h?"},
                "footer": {"text": "Clínica Alice"},
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": "y", "title": "Confirmar"}},
                        {"type": "reply", "reply": {"id": "n", "title": "Remarcar"}},
                    ]
                },
            },
            author_type="assistant",
            author_user=None,
            status="delivered",
            wamid="wamid.btn",
        )
    )
    made.append(
        case.receive(
            "interactive",
            payloads.build_button_reply(reply_id="y", title="Confirmar"),
            context={"from": "5511", "id": "wamid.btn"},
        )
    )
    made.append(
        case.sent(
            "interactive",
            {
                "type": "list",
                "body": {"text": "Escolha o horário"},
                "action": {
                    "button": "Horários",
                    "sections": [
                        {
                            "title": "Manhã",
                            "rows": [{"id": "9", "title": "09:00", "description": "Dr. Paulo"}],
                        }
                    ],
                },
            },
            status="sent",
        )
    )
    made.append(
        case.sent(
            "interactive",
            {
                "type": "cta_url",
                "body": {"text": "Seu exame está pronto"},
                "action": {
                    "name": "cta_url",
                    "parameters": {
                        "display_text": "Ver exame",
                        "url": "https://clinica.test/exame",
                    },
                },
            },
            status="pending",
            author_type="automation",
            author_user=None,
        )
    )
    made.append(
        case.sent(
            "template",
            {
                "name": "lembrete",
                "language": {"code": "pt_BR"},
                "components": [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": "Rita"},
                            {"type": "text", "text": "sexta 10h"},
                        ],
                    }
                ],
            },
            author_type="campaign",
            author_user=None,
            status="read",
            wamid="wamid.tpl",
        )
    )
    made.append(
        case.receive(
            "button",
            payloads.build_template_button(payload="stop", text="Parar promoções"),
            context={"from": "5511", "id": "wamid.tpl"},
        )
    )
    made.append(
        case.receive(
            "order",
            {
                "catalog_id": "1",
                "text": "",
                "product_items": [
                    {
                        "product_retailer_id": "LIMPEZA",
                        "quantity": 2,
                        "item_price": 150,
                        "currency": "BRL",
                    },
                    {
                        "product_retailer_id": "CLAREAMENTO",
                        "quantity": 1,
                        "item_price": 800,
                        "currency": "BRL",
                    },
                ],
            },
        )
    )
    made.append(
        case.receive(
            "system",
            {
                "body": "User changed from 5511 to 5512",
                "wa_id": "5512",
                "type": "user_changed_number",
            },
        )
    )
    made.append(
        case.receive(
            "unsupported",
            {"type": "poll"},
            errors=[
                {
                    "code": 131051,
                    "title": "Message type unknown",
                    "message": "Message type unknown",
                    "error_data": {"details": "Message type is currently not supported."},
                }
            ],
        )
    )
    made.append(
        case.sent(
            "text",
            {"body": "<script>alert(1)</script> Até sexta!"},
            status="failed",
            error_code=131047,
            error_title="Re-engagement message",
            error_details="More than 24 hours have passed since the customer last replied.",
        )
    )
    reacted = case.receive("text", payloads.build_text("Obrigada!"), wamid="wamid.react")
    case.receive("reaction", payloads.build_reaction(message_id="wamid.react", emoji="❤️"))
    made.append(reacted)
    edited = case.receive("text", payloads.build_text("Chego 9h"), wamid="wamid.edit")
    case.receive(
        "edit",
        {
            "original_message_id": "wamid.edit",
            "message": {"type": "text", "text": {"body": "Chego às 9h30"}},
        },
    )
    made.append(edited)
    revoked = case.receive("text", payloads.build_text("ops"), wamid="wamid.rev")
    case.receive("revoke", {"original_message_id": "wamid.rev"})
    made.append(revoked)
    made.append(
        case.sent(
            "text",
            {"body": "Perfeito, até lá!"},
            reply_to=edited,
            reply_to_wamid="wamid.edit",
            status="delivered",
        )
    )
    made.append(
        services.note_add(
            chat=case.chat, author=case.manager, body="Paciente *VIP*, oferecer horário estendido."
        )
    )
    services.chat_assign(chat=case.chat, assignee=case.agent, actor=case.manager)
    made.append(Message.objects.filter(chat=case.chat, type="activity").latest("id"))
    return made


STANDALONE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{static}/css/tokens.css"><link rel="stylesheet" href="{static}/css/app.css">
<link rel="stylesheet" href="{static}/css/inbox.css"></head>
<body><main class="timeline" style="max-width:900px;margin:auto">{day}{entries}</main></body></html>"""


def write_timeline_page(case: RenderingTestCase, directory: Path) -> Path:
    """A standalone HTML page with one entry of every kind, plus small real media files."""
    media = directory / "media" / "media"  # "media/" + the stored name "media/..."
    media.mkdir(parents=True, exist_ok=True)
    (media / "xray.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="480" height="320">'
        '<rect width="480" height="320" fill="#78a0c8"/><circle cx="240" cy="160" r="90" fill="#e2e8f0"/></svg>'
    )
    (media / "sticker.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="128" height="128">'
        '<circle cx="64" cy="64" r="60" fill="#fbbf24"/><circle cx="44" cy="52" r="8"/>'
        '<circle cx="84" cy="52" r="8"/><path d="M36 80q28 28 56 0" stroke="#000" stroke-width="6" fill="none"/></svg>'
    )
    build_timeline(case)
    timeline = (
        Message.objects.filter(chat=case.chat)
        .select_related("reply_to", "author_user")
        .prefetch_related("media")
    )
    entries = "\n".join(render_to_string("inbox/_message.html", {"message": m}) for m in timeline)
    for media in Media.objects.filter(message__chat=case.chat).exclude(file=""):
        # Served from the page's folder instead of the authenticated view.
        entries = entries.replace(f'="{media.url}"', f'="media/{media.file.name}"')
    day = render_to_string("inbox/_day_separator.html", {"day": WHEN})
    page = directory / "timeline.html"
    static = Path(settings.BASE_DIR, "static").as_uri()
    page.write_text(STANDALONE.format(static=static, day=day, entries=entries), encoding="utf-8")
    return page


@pytest.mark.browser
class BrowserTests(RenderingTestCase):
    def test_it_fits_a_320px_phone_and_a_desktop(self):
        from playwright.sync_api import sync_playwright

        from tests.conftest import chromium_path

        with tempfile.TemporaryDirectory() as directory:
            page_path = write_timeline_page(self, Path(directory))
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium_path() or "/usr/bin/chromium",
                    headless=True,
                    args=["--no-sandbox", "--disable-gpu", "--allow-file-access-from-files"],
                )
                try:
                    for width in (320, 1280):
                        page = browser.new_page(viewport={"width": width, "height": 800})
                        page.goto(page_path.as_uri())
                        overflow = page.evaluate(
                            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                        )
                        self.assertLessEqual(overflow, 0, f"horizontal scroll at {width}px")
                        # Customer on the left, team on the right.
                        inbound = page.locator(".msg-in .msg-bubble").first.bounding_box()
                        outbound = page.locator(".msg-out .msg-bubble").first.bounding_box()
                        self.assertLess(inbound["x"], outbound["x"])
                        self.assertEqual(page.locator("script").count(), 0)
                        image = page.locator(".msg-image").first
                        image.scroll_into_view_if_needed()
                        image.evaluate(
                            "img => img.complete ? null : new Promise(r => (img.onload = r))"
                        )
                        self.assertGreater(image.evaluate("img => img.naturalWidth"), 0)
                        page.close()
                finally:
                    browser.close()
