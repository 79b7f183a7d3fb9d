"""A sample clinic knowledge base: the demo assistant's and the retrieval evaluation's."""

CLINIC_KNOWLEDGE = {
    "Horários": "A clínica funciona de segunda a sexta, das 8h às 19h, e aos sábados das 8h às "
    "13h. Não abrimos aos domingos e feriados.",
    "Endereço": "Ficamos na Avenida Paulista, 1500, sala 1203, em São Paulo, perto da estação "
    "Trianon-Masp do metrô.",
    "Estacionamento": "Há estacionamento conveniado no Edifício Center Park, com 2 horas grátis "
    "para pacientes mediante carimbo na recepção.",
    "Convênios": "Aceitamos os convênios Amil Dental, OdontoPrev, Bradesco Dental e SulAmérica "
    "Odonto. Outros planos podem pedir reembolso.",
    "Limpeza": "A limpeza (profilaxia) custa R$ 180 e inclui raspagem de tártaro, polimento e "
    "aplicação de flúor. Dura cerca de 40 minutos.",
    "Clareamento": "O clareamento dental a laser custa R$ 900 em consultório; o clareamento "
    "caseiro com moldeira sai por R$ 650.",
    "Implantes": "O implante dentário unitário custa a partir de R$ 3.500, incluindo a coroa de "
    "porcelana. A avaliação com tomografia é gratuita.",
    "Ortodontia": "Trabalhamos com aparelho fixo metálico, estético de safira e alinhadores "
    "invisíveis. A manutenção mensal do aparelho fixo custa R$ 150.",
    "Crianças": "A odontopediatria atende crianças a partir de 1 ano, com a Dra. Paula, às "
    "terças e quintas.",
    "Pagamento": "Aceitamos Pix, dinheiro, cartão de débito e crédito em até 10 vezes sem juros "
    "para tratamentos acima de R$ 1.000.",
    "Cancelamento": "Para cancelar ou remarcar uma consulta, avise com 24 horas de antecedência; "
    "faltas sem aviso são cobradas em R$ 80.",
    "Urgência": "Em caso de dor forte, sangramento ou dente quebrado, temos atendimento de "
    "urgência no mesmo dia; ligue para (11) 4000-0000.",
    "Pós-extração": "Depois de uma extração, evite bochechar, alimentos quentes e exercícios por "
    "24 horas, e use gelo no rosto nas primeiras horas.",
    "Sensibilidade": "Sensibilidade nos dentes após o clareamento é normal por até 48 horas; use "
    "creme dental para dentes sensíveis.",
}

DEMO_INSTRUCTIONS = (
    "Você é a Sofia, assistente virtual da clínica odontológica. Responda dúvidas sobre horários, "
    "endereço, preços, convênios e cuidados. Para marcar ou remarcar consultas, colete nome e "
    "melhor horário e chame a equipe. Nunca dê diagnóstico."
)
