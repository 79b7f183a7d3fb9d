"""Lexical retrieval that understands WhatsApp Portuguese, English and Spanish.

Customers write without accents, with typos and slang, in three languages, while the knowledge
is written properly in one. Both sides go through the same analysis: accents folded, stopwords
out, a light pt/es/en stemmer, words of a synonym group (built in, plus the organization's own)
made one token; query words unknown to the knowledge are matched to a known word one edit away
("limpesa" → limpeza). Ranking is BM25; ``relevance`` is the share of the question's weight the
passage covers, so a threshold can say "nothing here answers this".

Pure Python over an assistant's chunks, built once per knowledge change and kept in the
process (``knowledge.lexical_index``): answering costs no query beyond the cache check.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

_STOPWORDS = """
a o e as os de da do das dos em no na nos nas um uma uns umas para pra pro por com sem que se ao
aos à é eh ou qual quais quando como voces voce vc vcs eu meu minha meus minhas tem têm ter
ser sao estou esta isso isto esse essa aqui ai la me te lhe nos ja mais muito muita so tb tbm
também tambem ne né oi ola bom dia boa tarde noite obrigado obrigada por favor pf pfv
queria quero gostaria saber pode posso podem sera seria faz fazem tipo mesmo entao
the an and or of to in on at for is are do does what which when who how can could i you your
my me we our us it its this that there be have has please hi hello would like want know
el la los las y es un una unos unas del al lo le les con por para que se su sus mi mis tu
hay son esta estan como cuando cual puedo puede quiero quisiera saber hola gracias
onde where donde q oq hj hoje ontem amanha today tomorrow yesterday hoy ayer manana fazer faco
should will just get got any some than then also vou vai ir iria ainda agora now ahora
gente pessoal alguem algo coisa thing cosa favor ok okay sim nao yes no si
take see tell give dar diz fala sabe sabem let need necesito preciso precisa
bring trazer levar traer tienen tiene tengo does did
"""
STOPWORDS = frozenset(
    "".join(c for c in unicodedata.normalize("NFKD", w) if not unicodedata.combining(c))
    for w in _STOPWORDS.split()
)

# Groups of words that mean the same to a customer of a clinic or a shop, across pt/en/es and
# WhatsApp slang. Each group becomes one token on both sides, so it does not matter which word
# the knowledge uses.
SYNONYM_GROUPS = [
    "horario horarios funciona funcionamento work works abre abrem abrir aberto abertos fecha "
    "fecham fechar fechado expediente hours open opens opening close closes closing time "
    "abren abierto cierran cierra atienden",
    "sabado sabados saturday saturdays",
    "semana semanal week weekday weekdays segunda sexta",
    "aceita aceitam aceitar aceitamos accept accepts accepted aceptan acepta aceptar",
    "domingo domingos sunday sundays",
    "feriado feriados holiday holidays festivo festivos",
    "endereco localizacao local localizado fica ficam address located location where direccion "
    "ubicacion ubicados ubicado",
    "estacionamento estacionar estaciono estacionamentos vaga vagas carro carros garagem "
    "parking park parkear car valet aparcar aparcamiento coche parqueo parqueadero",
    "metro metrô estacao subway station train trem",
    "convenio convenios plano planos seguro seguros insurance insurances obra aseguradora prepaga",
    "preco precos valor valores custa custam custo cuesta cuestan precio precios cost costs "
    "price prices much quanto qto qnto quantos cuanto cuanta cuantos sai saem sale cobram cobra "
    "cobrado tarifa",
    "limpeza profilaxia limpiar limpieza cleaning clean cleanings tartaro tartar",
    "clareamento clarear clareia branqueamento whitening whiten blanqueamiento blanquear",
    "implante implantes implant implants",
    "aparelho aparelhos ortodontia ortodontico braces brackets frenos ortodoncia orthodontics",
    "alinhador alinhadores aligner aligners invisalign alineadores alineador",
    "crianca criancas filho filha filhos infantil kid kids child children "
    "nino ninos nina hijo hija hijos bebe nene son daughter baby",
    "ano anos idade year years old edad",
    "avaliacao avaliacoes avaliar evaluation assessment checkup evaluacion valoracion",
    "pagamento pagar pago pagam pay payment payments pagos",
    "cartao card cards tarjeta credito credit debito debit",
    "parcelar parcela parcelas parcelado parcelamento vezes installments installment cuotas",
    "dinheiro especie cash efectivo",
    "cancelar cancelamento cancela desmarcar desmarco cancel cancellation anular",
    "remarcar remarco reagendar reagendo mudar reschedule reprogramar cambiar",
    "agendar agendo marcar marco agendamento consulta consultas appointment appointments "
    "book booking schedule cita citas turno reservar",
    "urgencia urgencias emergencia emergencias urgente emergency urgent",
    "dor dores doendo doi pain hurts ache dolor duele",
    "quebrei quebrado quebrou quebrada broke broken roto rota rompi lasquei",
    "dente dentes dentinho tooth teeth diente dientes muela muelas",
    "extracao extrair arrancar arranquei tirar extraction extract pulled sacar extraccion",
    "sensibilidade sensivel sensiveis sensitivity sensitive sensibilidad",
    "bochechar enxaguar rinse enjuagar",
    "gratis gratuito gratuita free gratuitamente",
    "evitar evite evita avoid evitarse",
    "depois apos after despues",
    "exercicio exercicios academia treino treinar gym workout ejercicio gimnasio",
    "fluor fluoride fluoruro",
    "dentista dentistas doutor doutora dr dra doctor dentist odontologo odontologa",
]

_SUFFIX_TEXT = """amentos amento imentos imento acoes icoes acao icao coes cao mente idades idade ismos ismo
    istas ista aveis avel iveis ivel ando endo indo ados idos adas idas ado ido ada ida aram eram
    iram ariam aria arao ara amos emos imos avam iam am em ei ou ing ies ied ed ly ar er ir as es
os is us a e o s"""
_SUFFIXES = sorted(_SUFFIX_TEXT.split(), key=len, reverse=True)


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", (text or "").lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def strip_suffix(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def stem(word: str) -> str:
    """A light pt/es/en stemmer: one inflectional or derivational suffix off, at most 6
    letters kept. Crude, but the same on both sides."""
    return strip_suffix(word)[:6]


def _build_synonyms(groups) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for group in groups:
        words = [fold(w) for w in re.findall(r"[\w]+", group)]
        if len(words) < 2:
            continue
        canonical = "≡" + stem(words[0])
        for word in words:
            mapping.setdefault(word, canonical)
            mapping.setdefault(strip_suffix(word), canonical)
    return mapping


BUILTIN_SYNONYMS = _build_synonyms(SYNONYM_GROUPS)


def parse_synonyms(text: str) -> list[str]:
    """An organization's synonym list: one group per line, words separated by commas."""
    return [line.replace(",", " ") for line in (text or "").splitlines() if line.strip()]


def synonyms_for(extra_groups: list[str]) -> dict[str, str]:
    """The built-in groups with the organization's own on top (theirs win)."""
    if not extra_groups:
        return BUILTIN_SYNONYMS
    return {**BUILTIN_SYNONYMS, **_build_synonyms(extra_groups)}


def analyze_words(text: str, synonyms: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(token, folded word) of each content word of ``text``."""
    synonyms = BUILTIN_SYNONYMS if synonyms is None else synonyms
    pairs = []
    for word in re.findall(r"[a-z0-9]+", fold(text)):
        if word in STOPWORDS or (len(word) < 2 and not word.isdigit()):
            continue
        pairs.append((synonyms.get(word) or synonyms.get(strip_suffix(word)) or stem(word), word))
    return pairs


def analyze(text: str, synonyms: dict[str, str] | None = None) -> list[str]:
    return [token for token, _word in analyze_words(text, synonyms)]


def _within_one_edit(a: str, b: str) -> bool:
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diffs) == 1 or (
            len(diffs) == 2 and diffs[1] == diffs[0] + 1 and a[diffs[0]] == b[diffs[1]]
            and a[diffs[1]] == b[diffs[0]]
        )  # fmt: skip
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long[i]:
        i += 1
    return short[i:] == long[i + 1 :]


@dataclass
class LexicalIndex:
    """BM25 over one assistant's chunks."""

    ids: list[int]
    synonyms: dict[str, str]
    docs: list[Counter] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    df: Counter = field(default_factory=Counter)
    postings: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def build(cls, rows: list[tuple[int, str]], synonyms: dict[str, str]) -> LexicalIndex:
        index = cls(ids=[row[0] for row in rows], synonyms=synonyms)
        for position, (_id, text) in enumerate(rows):
            counts = Counter(analyze(text, synonyms))
            index.docs.append(counts)
            index.lengths.append(sum(counts.values()))
            for token in counts:
                index.df[token] += 1
                index.postings.setdefault(token, []).append(position)
        return index

    def idf(self, token: str) -> float:
        n = len(self.ids)
        df = self.df.get(token, 0)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def _known(self, token: str, word: str = "") -> list[tuple[str, float]]:
        """``token`` itself; or, for a word the knowledge never uses, the known tokens one edit
        away (a typo: "limpesa"), a synonym one edit away ("estacionamnto"), or a known word
        it contains (a brand: "uniodonto" → odonto), at a discount."""
        if token in self.df:
            return [(token, 1.0)]
        if len(token) < 4 or token.startswith("≡") or token.isdigit():
            return []
        near = [
            (known, 0.8)
            for known in self.df
            if not known.startswith("≡") and _within_one_edit(token, known)
        ]
        if not near and word:
            near = [
                (canonical, 0.8)
                for synonym, canonical in self.synonyms.items()
                if canonical in self.df and len(synonym) >= 5 and _within_one_edit(word, synonym)
            ]
        if not near and word and len(word) >= 7:
            near = [
                (known, 0.5)
                for known in self.df
                if len(known) >= 5 and not known.startswith("≡") and known in word
            ]
        return list(dict.fromkeys(near))[:3]

    def search(self, query: str, context: str = "", k: int = 6) -> list[tuple[int, float, float]]:
        """Best ``k`` chunks as (chunk id, BM25 score, relevance 0–1), best first. Words of
        ``context`` (earlier customer turns) count half."""
        if not self.ids:
            return []
        weights: dict[str, float] = {}
        words: dict[str, str] = {}
        for text, weight in ((context, 0.5), (query, 1.0)):
            for token, word in analyze_words(text, self.synonyms):
                if token.isdigit() or (len(token) < 3 and token not in self.df):
                    continue  # "3 anos", "vc": no topic in them
                weights[token] = max(weights.get(token, 0.0), weight)
                words[token] = word
        if not weights:
            return []
        n = len(self.ids)
        top_idf = math.log(1 + (n + 0.5) / 0.5)
        average = sum(self.lengths) / n or 1.0
        scores: dict[int, float] = {}
        covered: dict[int, float] = {}
        total = 0.0
        for token, weight in weights.items():
            matches = self._known(token, words.get(token, ""))
            # An unknown word weighs as much as the rarest: "aceita uniodonto?" is mostly
            # about uniodonto, which nothing here mentions.
            total += weight * (max((self.idf(m) for m, _d in matches), default=top_idf))
            for known, discount in matches:
                idf = self.idf(known)
                for position in self.postings.get(known, ()):
                    tf = self.docs[position][known]
                    norm = tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * self.lengths[position] / average))
                    scores[position] = scores.get(position, 0.0) + weight * discount * idf * norm
                    covered[position] = covered.get(position, 0.0) + weight * discount * idf
        ranked = sorted(scores, key=lambda p: (-scores[p], self.ids[p]))[:k]
        return [(self.ids[p], scores[p], min(1.0, covered[p] / total)) for p in ranked]


def language_of(text: str) -> str:
    """ "pt", "en" or "es" by the function words used (empty when unsure)."""
    words = re.findall(r"[a-z]+", fold(text))
    marks = {
        "en": {"the", "is", "are", "do", "you", "what", "how", "can", "where", "much", "does",
               "my", "i", "have", "open", "there", "any", "it", "with", "on"},
        "es": {"el", "los", "las", "es", "hay", "cuanto", "cuesta", "donde", "puedo", "tienen",
               "usted", "ustedes", "quiero", "necesito", "abren", "y", "con", "mi", "una", "por"},
        "pt": {"voce", "voces", "vc", "vcs", "o", "os", "tem", "quanto", "custa", "onde", "posso",
               "eu", "meu", "minha", "uma", "com", "nao", "sim", "e", "por", "pra"},
    }  # fmt: skip
    counts = {lang: sum(w in vocab for w in words) for lang, vocab in marks.items()}
    best = max(counts, key=counts.get)
    ordered = sorted(counts.values(), reverse=True)
    return best if ordered[0] > ordered[1] else ""
