"""Weeks of believable history for the demo organization (``manage.py demo``): every message
type, notes and activities, quick replies, approved templates with sample values, a chat past
the 24 h window. Deterministic (seeded), and added once per chat."""

import random
from datetime import timedelta

from django.utils import timezone

from accounts.models import Team
from inbox.models import Chat, Contact, Message, QuickReply
from integrations.models import MessageTemplate

IMAGE = "https://picsum.photos/seed/sorriso-{n}/640/480"
PDF = "https://www.w3.org/WAI/ER/tests/xhtml/testfiles/resources/pdf/dummy.pdf"
AUDIO = "https://upload.wikimedia.org/wikipedia/commons/c/c8/Example.ogg"

EXTRA_CONTACTS = [
    ("5511981110007", "Mariana Rocha", ["paciente"]),
    ("5511981110008", "Pedro Henrique Dias", ["lead", "clareamento"]),
    ("5511981110009", "Camila Duarte", ["paciente", "ortodontia"]),
    ("5521981110010", "Gustavo Nogueira", ["lead"]),
    ("5531981110011", "Larissa Teixeira", ["paciente"]),
    ("5511981110012", "Thiago Barbosa", ["lead", "implante"]),
    ("5541981110013", "Isabela Cardoso", ["paciente"]),
    ("5511981110014", "Eduardo Moreira", []),
    ("5511981110015", "Patrícia Freitas", ["paciente", "vip"]),
    ("5521981110016", "Rodrigo Castro", ["lead"]),
]

TEMPLATES = [
    (
        "lembrete_consulta",
        "UTILITY",
        [
            {"type": "HEADER", "format": "TEXT", "text": "Lembrete de consulta"},
            {
                "type": "BODY",
                "text": "Olá {{1}}, lembramos da sua consulta com {{2}} em {{3}} às {{4}}. "
                "Podemos confirmar sua presença?",
                "example": {"body_text": [["Juliana", "Dra. Helena", "12/05", "14:30"]]},
            },
            {"type": "FOOTER", "text": "Clínica Sorriso"},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "QUICK_REPLY", "text": "Confirmar"},
                    {"type": "QUICK_REPLY", "text": "Remarcar"},
                ],
            },
        ],
    ),
    (
        "retorno_semestral",
        "MARKETING",
        [
            {
                "type": "BODY",
                "text": "Oi {{1}}! Já faz seis meses da sua última limpeza. Que tal agendar "
                "seu retorno? Este mês a avaliação sai por {{2}}.",
                "example": {"body_text": [["Carlos", "R$ 90"]]},
            }
        ],
    ),
    (
        "boas_vindas",
        "UTILITY",
        [
            {
                "type": "BODY",
                "text": "Olá! Obrigado por falar com a Clínica Sorriso. Como podemos ajudar?",
            }
        ],
    ),
]

QUICK_REPLIES = [
    ("ola", "Olá {{first_name}}! Aqui é {{agent}}, da Clínica Sorriso. Como posso ajudar?", None),
    (
        "endereco",
        "Estamos na Rua das Flores, 123 — Vila Mariana, São Paulo. Há estacionamento.",
        None,
    ),
    ("horario", "Atendemos de segunda a sexta, das 8h às 19h, e aos sábados das 8h às 12h.", None),
    ("valores", "A avaliação custa R$ 120 e a limpeza R$ 180. Aceitamos Pix e cartão.", None),
    ("obrigado", "Obrigada pelo contato, {{first_name}}! Qualquer coisa, é só chamar. 😊", "ana"),
]

# (direction, type, payload) steps of a conversation; "{name}" is the contact's first name.
SCRIPTS = [
    [
        ("in", "text", "Oi, boa tarde! Vocês atendem convênio?"),
        ("out", "text", "Boa tarde, {name}! Atendemos Amil, Bradesco Dental e SulAmérica."),
        ("in", "image", "Minha carteirinha"),
        ("out", "text", "Perfeito, está coberto. Quer agendar uma avaliação?"),
        ("out", "buttons", "Qual período fica melhor?"),
        ("in", "button_reply", "Manhã"),
        ("note", "note", "Paciente prefere manhã; verificar agenda da Dra. Helena."),
        ("out", "text", "Tenho terça às 9h30. Pode ser?"),
        ("in", "text", "Pode sim, obrigada!"),
    ],
    [
        ("in", "audio", ""),
        ("out", "text", "Oi {name}! Ouvi seu áudio: o orçamento do implante segue em PDF."),
        ("out", "document", "Orçamento implante.pdf"),
        ("in", "text", "Dá pra parcelar?"),
        ("out", "list", "Formas de pagamento"),
        ("in", "list_reply", "Cartão em 10x"),
        ("out", "text", "Em 10x sem juros no cartão. Posso reservar um horário?"),
    ],
    [
        ("in", "text", "Qual o endereço de vocês?"),
        ("out", "location", ""),
        ("in", "text", "Obrigado! Vou levar meu filho também."),
        ("in", "contacts", ""),
        ("out", "text", "Cadastrei o contato dele, {name}. Até amanhã!"),
        ("in", "sticker", ""),
    ],
    [
        ("out", "template", ""),
        ("in", "button_reply", "Confirmar"),
        ("out", "text", "Consulta confirmada, {name}. Até lá! 😊"),
        ("in", "text", "Vou chegar uns minutinhos antes."),
    ],
]


def _content(kind: str, payload: str, name: str, n: int) -> tuple[str, str, dict]:
    """(message type, preview text, content) for one scripted step."""
    text = payload.format(name=name)
    if kind in ("text", "note"):
        key = "note" if kind == "note" else "text"
        body = {"body": text}
        return key, text, {"type": key, key: body}
    if kind == "image":
        return (
            "image",
            text,
            {"type": "image", "image": {"link": IMAGE.format(n=n), "caption": text}},
        )
    if kind == "sticker":
        return "sticker", "", {"type": "sticker", "sticker": {"link": IMAGE.format(n=n + 50)}}
    if kind == "audio":
        return "audio", "", {"type": "audio", "audio": {"link": AUDIO, "voice": True}}
    if kind == "document":
        return "document", text, {"type": "document", "document": {"link": PDF, "filename": text}}
    if kind == "location":
        place = {
            "latitude": -23.5892,
            "longitude": -46.6345,
            "name": "Clínica Sorriso",
            "address": "Rua das Flores, 123 — Vila Mariana, São Paulo",
        }
        return "location", "Clínica Sorriso", {"type": "location", "location": place}
    if kind == "contacts":
        card = {
            "name": {"formatted_name": "Miguel " + name, "first_name": "Miguel"},
            "phones": [{"phone": "+55 11 98888-7777", "type": "CELL"}],
        }
        return "contacts", "Miguel " + name, {"type": "contacts", "contacts": [card]}
    if kind == "buttons":
        interactive = {
            "type": "button",
            "body": {"text": text},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "manha", "title": "Manhã"}},
                    {"type": "reply", "reply": {"id": "tarde", "title": "Tarde"}},
                ]
            },
        }
        return "interactive", text, {"type": "interactive", "interactive": interactive}
    if kind == "list":
        interactive = {
            "type": "list",
            "body": {"text": "Como prefere pagar?"},
            "action": {
                "button": text,
                "sections": [
                    {
                        "title": "Pagamento",
                        "rows": [
                            {"id": "pix", "title": "Pix à vista", "description": "5% de desconto"},
                            {"id": "cartao", "title": "Cartão em 10x"},
                            {"id": "boleto", "title": "Boleto"},
                        ],
                    }
                ],
            },
        }
        return (
            "interactive",
            "Como prefere pagar?",
            {"type": "interactive", "interactive": interactive},
        )
    if kind == "button_reply":
        reply = {"type": "button_reply", "button_reply": {"id": text.lower(), "title": text}}
        return "interactive", text, {"type": "interactive", "interactive": reply}
    if kind == "list_reply":
        reply = {"type": "list_reply", "list_reply": {"id": "cartao", "title": text}}
        return "interactive", text, {"type": "interactive", "interactive": reply}
    if kind == "template":
        template = {
            "name": "lembrete_consulta",
            "language": {"code": "pt_BR"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": name},
                        {"type": "text", "text": "Dra. Helena"},
                        {"type": "text", "text": "quinta"},
                        {"type": "text", "text": "10:00"},
                    ],
                }
            ],
        }
        preview = f"Olá {name}, lembramos da sua consulta com Dra. Helena em quinta às 10:00."
        return "template", preview, {"type": "template", "template": template}
    raise ValueError(kind)


def history_add(*, organization, number, chat: Chat, users: list, seed: int, days_back: int):
    """A few conversations spread over ``days_back`` days, the last one ending at the chat's
    ``last_message_at``."""
    rng = random.Random(seed)
    name = (chat.contact.display_name or "").split()[0]
    end = chat.last_message_at or timezone.now()
    sessions = sorted(rng.sample(range(1, days_back), k=min(3, days_back - 1)), reverse=True)
    moments = [end - timedelta(days=d, hours=rng.randint(0, 6)) for d in sessions] + [end]
    rows = []
    n = seed * 10
    for index, start in enumerate(moments):
        script = SCRIPTS[(seed + index) % len(SCRIPTS)]
        steps = len(script)
        for step, (direction, kind, payload) in enumerate(script):
            n += 1
            when = start - timedelta(minutes=3 * (steps - step))
            message_type, text, content = _content(kind, payload, name, n)
            agent = users[(seed + step) % len(users)]
            if direction == "note":
                fields = {
                    "direction": Message.Direction.INTERNAL,
                    "status": Message.Status.RECEIVED,
                    "author_type": Message.Author.USER,
                    "author_user": agent,
                }
            elif direction == "in":
                fields = {
                    "direction": Message.Direction.INBOUND,
                    "status": Message.Status.RECEIVED,
                    "author_type": Message.Author.CUSTOMER,
                    "wamid": f"wamid.demo-h-{chat.pk}-{n}",
                }
            else:
                fields = {
                    "direction": Message.Direction.OUTBOUND,
                    "status": Message.Status.READ,
                    "author_type": Message.Author.USER,
                    "author_user": agent,
                    "wamid": f"wamid.demo-o-{chat.pk}-{n}",
                }
            rows.append(
                Message(
                    organization=organization,
                    chat=chat,
                    number=number,
                    type=message_type,
                    text=text[:4096],
                    content=content,
                    timestamp=when,
                    **fields,
                )
            )
    Message.objects.bulk_create(rows)
    # Reactions show on the message they react to.
    liked = next((m for m in reversed(rows) if m.direction == Message.Direction.OUTBOUND), None)
    if liked is not None:
        liked.content = {**liked.content, "reactions": {"customer": "👍"}}
        liked.save(update_fields=["content"])
    last = rows[-1]
    Chat.objects.filter(pk=chat.pk).update(
        last_message_at=last.timestamp, last_message_preview=last.text[:200]
    )


def demo_extras(*, organization, number, users_by_role: dict, agents: list) -> None:
    """Everything beyond the first chats; safe to run again."""
    for name, category, components in TEMPLATES:
        MessageTemplate.objects.update_or_create(
            number=number,
            name=name,
            language="pt_BR",
            defaults={
                "organization": organization,
                "category": category,
                "status": "APPROVED",
                "components": components,
            },
        )
    people = {u.email.split("@")[0]: u for us in users_by_role.values() for u in us}
    for shortcut, text, owner in QUICK_REPLIES:
        QuickReply.objects.get_or_create(
            organization=organization,
            shortcut=shortcut,
            defaults={"text": text, "owner": people.get(owner) if owner else None},
        )
    team, _ = Team.objects.get_or_create(organization=organization, name="Recepção")
    team.members.add(*agents, *users_by_role.get("operator", []))

    now = timezone.now()
    for index, (wa_id, name, tags) in enumerate(EXTRA_CONTACTS):
        contact, _ = Contact.objects.get_or_create(
            organization=organization,
            wa_id=wa_id,
            defaults={
                "phone": f"+{wa_id}",
                "profile_name": name,
                "name": name,
                "tags": tags,
                "opt_in": Contact.OptIn.OPTED_IN,
            },
        )
        when = now - timedelta(hours=5 + 11 * index)
        Chat.objects.get_or_create(
            organization=organization,
            contact=contact,
            number=number,
            defaults={
                "assignee": agents[index % len(agents)] if index % 2 else None,
                "last_message_at": when,
                "window_expires_at": when + timedelta(hours=24),
                "status": Chat.Status.RESOLVED if index % 4 == 3 else Chat.Status.OPEN,
            },
        )
    team_users = [u for us in users_by_role.values() for u in us]
    for index, chat in enumerate(
        Chat.objects.filter(organization=organization).select_related("contact").order_by("pk")
    ):
        if chat.messages.count() > 2:
            continue  # already has its history
        history_add(
            organization=organization,
            number=number,
            chat=chat,
            users=team_users,
            seed=index + 1,
            days_back=14 + 3 * (index % 5),
        )
    # One chat whose customer last wrote three days ago: only a template may restart it.
    past = Chat.objects.filter(organization=organization, contact__wa_id="5521998760003").first()
    if past is not None:
        three_days = now - timedelta(days=3)
        past.messages.filter(timestamp__gt=three_days).update(
            timestamp=three_days - timedelta(minutes=5)
        )
        Chat.objects.filter(pk=past.pk).update(
            last_message_at=three_days - timedelta(minutes=5),
            window_expires_at=three_days + timedelta(hours=24),
            unread_count=0,
        )
    # Contacts are opted in, so campaigns and segments have an audience.
    Contact.objects.filter(organization=organization, opt_in=Contact.OptIn.UNKNOWN).update(
        opt_in=Contact.OptIn.OPTED_IN, opt_in_at=now - timedelta(days=30)
    )
