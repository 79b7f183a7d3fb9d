"""Ready flows a clinic can start from, in Portuguese, English and Spanish: a welcome with a
menu, opening hours and address, and lead qualification. Each becomes an ordinary draft the
clinic edits and publishes (the texts are examples to adapt: prices, address)."""

from django.utils.translation import gettext_lazy as _

from flows import definition, services

LANGUAGES = ("pt-br", "en", "es")

TEXTS = {
    "welcome_menu": {
        "name": {
            "pt-br": "Boas-vindas e menu",
            "en": "Welcome and menu",
            "es": "Bienvenida y menú",
        },
        "keywords": {"pt-br": "menu, oi, olá", "en": "menu, hi, hello", "es": "menú, menu, hola"},
        "welcome": {
            "pt-br": "Olá, {{contact.first_name}}! 😊 Bem-vindo(a) à nossa clínica.",
            "en": "Hi {{contact.first_name}}! 😊 Welcome to our clinic.",
            "es": "¡Hola, {{contact.first_name}}! 😊 Bienvenido(a) a nuestra clínica.",
        },
        "menu": {
            "pt-br": "Como podemos ajudar?",
            "en": "How can we help?",
            "es": "¿Cómo podemos ayudarte?",
        },
        "button": {"pt-br": "Ver opções", "en": "See options", "es": "Ver opciones"},
        "options": {
            "pt-br": ["Agendar consulta", "Preços", "Horário e endereço", "Falar com atendente"],
            "en": ["Book a visit", "Prices", "Hours and address", "Talk to a person"],
            "es": ["Reservar una cita", "Precios", "Horario y dirección", "Hablar con alguien"],
        },
        "ask_name": {
            "pt-br": "Ótimo! Qual o seu nome completo?",
            "en": "Great! What is your full name?",
            "es": "¡Genial! ¿Cuál es tu nombre completo?",
        },
        "prices": {
            "pt-br": "Consulta de avaliação: R$ 150. Limpeza: R$ 200. Clareamento: a partir de R$ 800.",
            "en": "Check-up: $40. Cleaning: $60. Whitening: from $200.",
            "es": "Consulta de evaluación: $40. Limpieza: $60. Blanqueamiento: desde $200.",
        },
        "hours": {
            "pt-br": "Atendemos de segunda a sexta, das 8h às 18h, e sábado das 8h às 12h. Rua Exemplo, 123 – Centro.",
            "en": "We are open Monday to Friday 8am–6pm and Saturday 8am–noon. 123 Example Street, Downtown.",
            "es": "Atendemos de lunes a viernes de 8 a 18 h y sábados de 8 a 12 h. Calle Ejemplo 123, Centro.",
        },
        "handoff": {
            "pt-br": "Certo! Uma pessoa da nossa equipe vai responder em instantes.",
            "en": "Sure! Someone from our team will answer shortly.",
            "es": "¡Claro! Alguien de nuestro equipo responderá en breve.",
        },
    },
    "hours_address": {
        "name": {
            "pt-br": "Horário e endereço",
            "en": "Opening hours and address",
            "es": "Horario y dirección",
        },
        "keywords": {
            "pt-br": "horário, endereço",
            "en": "hours, address",
            "es": "horario, dirección",
        },
        "open": {
            "pt-br": "Estamos abertos agora! Rua Exemplo, 123 – Centro. Quer que alguém da equipe fale com você?",
            "en": "We are open now! 123 Example Street, Downtown. Would you like someone from the team to talk to you?",
            "es": "¡Estamos abiertos ahora! Calle Ejemplo 123, Centro. ¿Quieres que alguien del equipo te atienda?",
        },
        "closed": {
            "pt-br": "Estamos fechados agora. Atendemos de segunda a sexta, das 8h às 18h. Deixe sua mensagem e respondemos assim que abrirmos!",
            "en": "We are closed right now. We are open Monday to Friday, 8am–6pm. Leave a message and we will answer when we open!",
            "es": "Ahora estamos cerrados. Atendemos de lunes a viernes de 8 a 18 h. ¡Deja tu mensaje y te responderemos al abrir!",
        },
        "yes_no": {
            "pt-br": ["Sim", "Não, obrigado"],
            "en": ["Yes", "No, thanks"],
            "es": ["Sí", "No, gracias"],
        },
        "bye": {"pt-br": "Até logo! 👋", "en": "See you soon! 👋", "es": "¡Hasta pronto! 👋"},
    },
    "lead_qualification": {
        "name": {
            "pt-br": "Qualificação de leads",
            "en": "Lead qualification",
            "es": "Calificación de leads",
        },
        "keywords": {"pt-br": "orçamento", "en": "quote", "es": "presupuesto"},
        "ask_name": {
            "pt-br": "Para começar, qual o seu nome?",
            "en": "To start, what is your name?",
            "es": "Para empezar, ¿cómo te llamas?",
        },
        "interest": {
            "pt-br": "Qual tratamento te interessa?",
            "en": "Which treatment are you interested in?",
            "es": "¿Qué tratamiento te interesa?",
        },
        "treatments": {
            "pt-br": ["Implante", "Clareamento", "Ortodontia"],
            "en": ["Implant", "Whitening", "Braces"],
            "es": ["Implante", "Blanqueamiento", "Ortodoncia"],
        },
        "when": {
            "pt-br": "Quando pretende começar?",
            "en": "When would you like to start?",
            "es": "¿Cuándo te gustaría empezar?",
        },
        "timing": {
            "pt-br": ["Este mês", "Em 3 meses", "Só pesquisando"],
            "en": ["This month", "Within 3 months", "Just looking"],
            "es": ["Este mes", "En 3 meses", "Solo mirando"],
        },
        "hot": {
            "pt-br": "Perfeito, {{contact.first_name}}! Vou te passar para a nossa equipe montar seu orçamento.",
            "en": "Perfect, {{contact.first_name}}! I'm passing you to our team to prepare your quote.",
            "es": "¡Perfecto, {{contact.first_name}}! Te paso con nuestro equipo para preparar tu presupuesto.",
        },
        "cold": {
            "pt-br": 'Obrigado! Vamos te mandar novidades sobre {{vars.treatment}}. Escreva "orçamento" quando quiser.',
            "en": 'Thanks! We\'ll send you news about {{vars.treatment}}. Write "quote" whenever you like.',
            "es": '¡Gracias! Te enviaremos novedades sobre {{vars.treatment}}. Escribe "presupuesto" cuando quieras.',
        },
    },
}

LABELS = {
    "welcome_menu": _("Welcome and menu"),
    "hours_address": _("Opening hours and address"),
    "lead_qualification": _("Lead qualification"),
}


def _n(node_id, node_type, x, y, **props):
    return {"id": node_id, "type": node_type, "props": props, "x": x, "y": y}


def _e(source, port, target):
    return {"from": source, "port": port, "to": target}


def _welcome_menu(t, lang):
    options = t["options"][lang]
    return {
        "nodes": [
            _n("start", "start", 40, 160, keywords=t["keywords"][lang]),
            _n("welcome", "message", 320, 160, label="Welcome", text=t["welcome"][lang]),
            _n(
                "menu",
                "list",
                600,
                160,
                label="Menu",
                text=t["menu"][lang],
                button=t["button"][lang],
                options=options,
            ),
            _n(
                "name",
                "question",
                900,
                0,
                label="Name",
                text=t["ask_name"][lang],
                kind="text",
                save_to="contact.name",
            ),
            _n("prices", "message", 900, 180, label="Prices", text=t["prices"][lang]),
            _n("hours", "message", 900, 340, label="Hours", text=t["hours"][lang]),
            _n(
                "team",
                "handoff",
                1200,
                160,
                label="Team",
                text=t["handoff"][lang],
                reason=options[0],
            ),
        ],
        "edges": [
            _e("start", "next", "welcome"),
            _e("welcome", "next", "menu"),
            _e("menu", "opt1", "name"),
            _e("menu", "opt2", "prices"),
            _e("menu", "opt3", "hours"),
            _e("menu", "opt4", "team"),
            _e("menu", "no_match", "team"),
            _e("name", "next", "team"),
            _e("name", "invalid", "team"),
        ],
    }


def _hours_address(t, lang):
    return {
        "nodes": [
            _n("start", "start", 40, 160, keywords=t["keywords"][lang], outside_hours=False),
            _n("open", "condition", 320, 160, label="Open now?", subject="open"),
            _n(
                "opened",
                "buttons",
                600,
                40,
                label="Open",
                text=t["open"][lang],
                options=t["yes_no"][lang],
            ),
            _n("closed", "message", 600, 300, label="Closed", text=t["closed"][lang]),
            _n("team", "handoff", 900, 0, label="Team", reason=t["name"][lang]),
            _n("bye", "message", 900, 160, label="Bye", text=t["bye"][lang]),
        ],
        "edges": [
            _e("start", "next", "open"),
            _e("open", "yes", "opened"),
            _e("open", "no", "closed"),
            _e("opened", "opt1", "team"),
            _e("opened", "opt2", "bye"),
            _e("opened", "no_match", "team"),
        ],
    }


def _lead_qualification(t, lang):
    timing = t["timing"][lang]
    return {
        "nodes": [
            _n("start", "start", 40, 160, keywords=t["keywords"][lang]),
            _n(
                "name",
                "question",
                320,
                160,
                label="Name",
                text=t["ask_name"][lang],
                kind="text",
                save_to="contact.name",
            ),
            _n(
                "interest",
                "buttons",
                600,
                160,
                label="Interest",
                text=t["interest"][lang],
                options=t["treatments"][lang],
            ),
            _n(
                "save",
                "attribute",
                900,
                160,
                label="Treatment",
                save_to="contact.treatment",
                value="{{vars.interest_choice}}",
            ),
            _n(
                "when",
                "question",
                1180,
                160,
                label="When",
                text=t["when"][lang],
                kind="choice",
                options=timing,
                save_to="vars.timing",
            ),
            _n(
                "is_hot",
                "condition",
                1460,
                160,
                label="This month?",
                subject="value",
                path="vars.timing",
                operator="equals",
                value=timing[0],
            ),
            _n("hot", "tag", 1740, 40, label="Hot lead", tag="lead-quente"),
            _n("stage", "stage", 2020, 40, label="Stage", stage="contacted"),
            _n("team", "handoff", 2300, 40, label="Team", text=t["hot"][lang], reason="lead"),
            _n("cold", "tag", 1740, 300, label="Cold lead", tag="lead-frio"),
            _n("bye", "message", 2020, 300, label="Bye", text=t["cold"][lang]),
        ],
        "edges": [
            _e("start", "next", "name"),
            _e("name", "next", "interest"),
            _e("interest", "opt1", "save"),
            _e("interest", "opt2", "save"),
            _e("interest", "opt3", "save"),
            _e("save", "next", "when"),
            _e("when", "next", "is_hot"),
            _e("is_hot", "yes", "hot"),
            _e("is_hot", "no", "cold"),
            _e("hot", "next", "stage"),
            _e("stage", "next", "team"),
            _e("cold", "next", "bye"),
        ],
    }


BUILDERS = {
    "welcome_menu": _welcome_menu,
    "hours_address": _hours_address,
    "lead_qualification": _lead_qualification,
}


def choices() -> list[tuple[str, str]]:
    return [(key, str(label)) for key, label in LABELS.items()]


def template_definition(key: str, language: str) -> dict:
    lang = language if language in LANGUAGES else "pt-br"
    return definition.validated(BUILDERS[key](TEXTS[key], lang), for_publish=True)


def flow_from_template(*, organization, key: str, language: str, user=None):
    """A new draft from template ``key`` in ``language`` (pt-br, en, es); None if unknown."""
    if key not in BUILDERS:
        return None
    lang = language if language in LANGUAGES else (organization.language or "pt-br").lower()
    lang = lang if lang in LANGUAGES else "pt-br"
    return services.flow_create(
        organization=organization,
        name=TEXTS[key]["name"][lang],
        draft=template_definition(key, lang),
        user=user,
        template_key=key,
    )
