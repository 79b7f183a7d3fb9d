"""The output guard: a reply that carries a secret from the assistant's private notes (or, for
assistants that still keep secrets in their instructions, from those) never reaches the customer.

Models leak reworded, not verbatim, so the guard compares *secrets*, not sentences: codes,
numbers (digits spelled out, spaced or punctuated), e-mail addresses and URLs found in the
notes, plus long runs of the same words, all after folding case, accents, punctuation and
spacing. It is pure (no queries) and runs on every reply.
"""

import re
import unicodedata
from dataclasses import dataclass

NGRAM_WORDS = 5
MIN_NUMBER_DIGITS = 4

_DIGIT_WORDS = {
    "zero": "0", "um": "1", "uma": "1", "one": "1", "uno": "1", "dois": "2", "duas": "2",
    "two": "2", "dos": "2", "tres": "3", "three": "3", "quatro": "4", "four": "4",
    "cuatro": "4", "cinco": "5", "five": "5", "seis": "6", "meia": "6", "six": "6", "sete": "7",
    "seven": "7", "siete": "7", "oito": "8", "eight": "8", "ocho": "8", "nove": "9",
    "nine": "9", "nueve": "9", "oh": "0", "cero": "0",
}  # fmt: skip
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"']+|\b[\w-]+\.(?:com|net|org|br|io|me|ly)\S*")
_NUMBER_RUN = re.compile(r"\d(?:[\s\-.,/()+]*\d)*")
# A code: letters and digits mixed (VIP2024, X7-K9), or a long word in capitals (SORRISOFELIZ).
_CODE = re.compile(r"\b(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Za-z0-9][\w-]{2,}\b|\b[A-Z]{6,}\b")


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", (text or "").lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", fold(text))


def _digits_spelled(text: str) -> str:
    """ "nove nove oito" → "9 9 8": a number read out is still the number."""
    return re.sub(r"[a-z]+", lambda m: _DIGIT_WORDS.get(m.group(0), m.group(0)), fold(text))


def _numbers(text: str) -> set[str]:
    runs = (re.sub(r"\D", "", run) for run in _NUMBER_RUN.findall(_digits_spelled(text)))
    return {run for run in runs if len(run) >= MIN_NUMBER_DIGITS}


def _squash(text: str) -> str:
    """Letters and digits only: "V I P-2024" and "vip2024" look the same."""
    return "".join(_words(_digits_spelled(text)))


@dataclass(frozen=True)
class Secrets:
    numbers: frozenset[str]
    codes: frozenset[str]
    emails: frozenset[tuple[str, str]]  # (local part, domain's main label), squashed
    urls: frozenset[str]
    ngrams: frozenset[tuple[str, ...]]

    def __bool__(self) -> bool:
        return bool(self.numbers or self.codes or self.emails or self.urls or self.ngrams)


def secrets_of(text: str, *, public: str = "", ngram_words: int = NGRAM_WORDS) -> Secrets:
    """What must not leave ``text``; anything also in ``public`` (the knowledge passages and the
    customer's own facts sent with the reply) is not a secret."""
    text = text or ""
    public_numbers = _numbers(public)
    public_squashed = _squash(public)
    emails = set()
    for address in _EMAIL.findall(text):
        local, _at, domain = address.lower().partition("@")
        pair = (_squash(local), _squash(domain.split(".")[0]))
        if address.lower() not in (public or "").lower():
            emails.add(pair)
    without_emails = _EMAIL.sub(" ", text)
    urls = {
        _squash(re.sub(r"^(?:https?://)?(?:www\.)?", "", url))
        for url in _URL.findall(without_emails)
    }
    codes = {_squash(code) for code in _CODE.findall(_URL.sub(" ", without_emails))}
    numbers = _numbers(without_emails) - public_numbers
    words = _words(text)
    public_words = " " + " ".join(_words(public)) + " "
    ngrams = {
        tuple(words[i : i + ngram_words])
        for i in range(len(words) - ngram_words + 1)
        if f" {' '.join(words[i : i + ngram_words])} " not in public_words
    }
    return Secrets(
        numbers=frozenset(numbers),
        codes=frozenset(c for c in codes if len(c) >= 4 and c not in public_squashed),
        emails=frozenset(emails),
        urls=frozenset(u for u in urls if len(u) >= 6 and u not in public_squashed),
        ngrams=frozenset(ngrams),
    )


def leak(secrets: Secrets, reply: str) -> str:
    """What kind of secret ``reply`` gives away ("a number", …), empty when none."""
    if not secrets or not reply:
        return ""
    squashed = _squash(reply)
    said_numbers = _numbers(reply)
    for number in secrets.numbers:
        for said in said_numbers:
            # The whole number, or a long enough part of it (a phone without its area code).
            if number in said or (len(said) >= 6 and said in number):
                return "a number"
        if len(number) >= 6 and number in squashed:
            return "a number"
    if any(code in squashed for code in secrets.codes):
        return "a code"
    if any(local in squashed and domain in squashed for local, domain in secrets.emails):
        return "an e-mail address"
    if any(url in squashed for url in secrets.urls):
        return "a link"
    words = _words(reply)
    for size in {len(gram) for gram in secrets.ngrams}:
        if any(tuple(words[i : i + size]) in secrets.ngrams for i in range(len(words) - size + 1)):
            return "a passage of the private notes"
    return ""
