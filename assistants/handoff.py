"""Deterministic detection of "let me talk to a person" in Portuguese, English and Spanish.

Runs on every customer message before any model call: a customer who asks for a person must
get one even when the model is down, over budget or fooled. Words that only mean "person" in
passing ("é por pessoa?", "is it per person?") do not count: a person noun counts only after a
request ("falar com", "chama", "talk to", "hablar con") or when it is the whole message
("atendente!"), and a few words ("humano", "robô", "real person") count anywhere.
"""

import re
import unicodedata

# Someone on the team (not the clinic's professionals: "quero marcar com a dentista" books).
_STAFF = (
    r"(?:alguem|pessoa|humano|humana|ser humano|atendente|atendentes|recepcao|recepcionista"
    r"|secretaria|pessoal|gerente|supervisor|supervisora|responsavel|dono|dona|funcionario|funcionaria"
    r"|operador|operadora|consultor|consultora|vendedor|vendedora|equipe|suporte|sac|ouvidoria"
    r"|someone|somebody|anyone|person|human|agent|representative|rep|operator|manager"
    r"|receptionist|reception|front desk|staff|team|owner|support|customer service"
    r"|alguien|persona|agente|asesor|asesora|encargado|encargada|recepcion|empleado|empleada"
    r"|responsable|chefe|boss|jefe|jefa|supervisora)"
)
# Anyone a customer may ask to talk to, professionals included ("falar com a dentista").
_PERSON = (
    rf"(?:{_STAFF}|atendimento|dentista|doutor|doutora|dr|dra|medico|medica|doctor|doctora|nurse)"
)
_ARTICLE = (
    r"(?:(?:um|uma|o|a|os|as|algum|alguma|seu|sua|teu|tua|voces|vcs|an|the|your|some|un|una"
    r"|el|la|los|las|su|tu|de|do|da|pra|para|com|with|to|me|mim|al|con)\s+)*"
)
# Verbs of talking or passing on: a few words may sit between them and the person.
_TALK = (
    r"(?:falar|fala|falo|falando|conversar|converso|chama|chame|chamar|chamem|passa|passe"
    r"|passar|transfere|transfira|transferir|encaminha|encaminhe|encaminhar|liga|ligar|me poe"
    r"|me coloca|cade|talk|talking|chat|speak|speaking|connect|transfer|put|call|reach|contact"
    r"|hablar|habla|hable|hablo|hablando|comunicar|comunicarme|pasame|pasa|pase|pasar|llama"
    r"|llamar|comunica|comunicas|comuniqueme|reclamar|reclamo|complain|ajuda|ajudar|help)"
)
# Verbs of wanting: the person must follow at once ("quero um atendente", "need a human").
_WANT = r"(?:quero|queria|preciso|precisava|want|need|get|quiero|necesito|quisiera)"
_PATTERNS = [
    # Is this a robot? ("isso é robô?", "vc é um bot?", "are you a bot", "eres un robot")
    r"\b(?:robo|robozinho|robot|bot|chatbot|chat bot)\b",
    r"\b(?:e|eh|seria|isso e|falando com|es|eres|hablando con)\s+(?:um |uma |un |una )?"
    r"(?:ia|inteligencia artificial|maquina|gravacao|automatico|automatica|automatizado)\b",
    r"\b(?:are you|is this|am i talking to|talking to)\s+(?:a |an )?"
    r"(?:ai|machine|recording|automated|real|human|person)\b",
    r"\b(?:voce|vc|voces|vcs|isso|tu|usted)\s+(?:e|eh|es|eres)\s+(?:de verdade|real|de verdad)\b",
    r"\binteligencia artificial\b",
    r"\b(?:com quem (?:eu )?(?:estou|to|tou) falando|who am i (?:talking|speaking) (?:to|with)"
    r"|con quien (?:estoy hablando|hablo))\b",
    # Someone real, in so many words.
    r"\b(?:pessoa|alguem|atendente|person|someone|somebody|human|persona|alguien|agente)"
    r"\s+(?:de verdade|real|reais|humano|humana|viva|de carne e osso|de verdad|for real|live"
    r"|actual)\b",
    r"\b(?:real|live|actual)\s+(?:person|human|people|agent)\b",
    r"\b(?:humano|humana|ser humano|human being|atendimento humano|atencion humana)\b",
    r"\b(?:atendente|atendentes|recepcionista|receptionist|representative|asesor|asesora)\b",
    rf"\b{_TALK}\b\s+(?:\w+\s+){{0,2}}?{_ARTICLE}{_PERSON}\b",
    rf"\b{_WANT}\s+{_ARTICLE}{_STAFF}\b",
    # "tem alguém aí?", "alguém pode me atender?"
    r"\balguem\s+(?:ai|pode me atender|me atende|pra me atender|para me atender|da equipe"
    r"|do atendimento)\b",
    r"\b(?:alguien|someone|somebody|anyone)\s+(?:que me atienda|there|to help me|help me)\b",
    r"\b(?:e|eh|tem)\s+(?:uma\s+)?pessoa\s+(?:que|q|respondendo|ai|aqui)\b",
    # A call back: "me liga", "can someone call me?", "llámame".
    r"\b(?:me liga|me ligue|me ligar|me ligam|liga pra mim|ligar pra mim|call me|llamame"
    r"|me llaman|me llame)\b",
]
_REQUEST = re.compile("|".join(f"(?:{p})" for p in _PATTERNS))
# The whole message is just a person word ("atendente", "gerente!", "reception please").
_POLITE = r"(?:por favor|please|pls|pf|plis|urgente|agora|now|ya|porfa)"
_ALONE = re.compile(rf"^(?:(?:o|a|um|uma|the|el|la|{_POLITE})\s+)*{_STAFF}(?:\s+{_POLITE})*$")
# Questions about prices or rules "per person": never a request for one.
_PER_PERSON = re.compile(r"\b(?:por|per|each|cada)\s+(?:pessoa|person|persona|cabeca|head)\b")


def fold(text: str) -> str:
    """Lowercase, no accents, punctuation as spaces, single spaces: what the patterns see."""
    decomposed = unicodedata.normalize("NFKD", (text or "").lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", plain).split())


def detect(text: str, extra_phrases=()) -> str:
    """The words that ask for a person in ``text`` (empty when none). ``extra_phrases`` are the
    organization's own (one word matches a whole word; several match as a phrase)."""
    folded = fold(text)
    if not folded:
        return ""
    for phrase in extra_phrases or ():
        phrase = fold(str(phrase))
        if phrase and re.search(rf"\b{re.escape(phrase)}\b", folded):
            return phrase
    scrubbed = _PER_PERSON.sub(" ", folded)
    match = _REQUEST.search(scrubbed) or _ALONE.search(scrubbed)
    return match.group(0).strip() if match else ""
