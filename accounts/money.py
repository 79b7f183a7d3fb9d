"""Money on screen in the organization's currency. Prices we pay (AI models, WhatsApp
templates) are in US dollars; pages convert them at the organization's rate."""

from decimal import ROUND_HALF_UP, Decimal

from django.utils import formats

SYMBOLS = {
    "BRL": "R$",
    "USD": "US$",
    "EUR": "€",
    "MXN": "MX$",
    "ARS": "AR$",
    "CLP": "CLP$",
    "COP": "COL$",
    "PEN": "S/",
}


def from_usd(amount, organization) -> Decimal:
    amount = Decimal(str(amount or 0))
    if organization is None or organization.currency == "USD":
        return amount
    return amount * Decimal(organization.usd_rate or 1)


def money(amount_usd, organization, decimals: int = 2) -> str:
    """``amount_usd`` shown in the organization's currency: "R$ 12,30"."""
    value = from_usd(amount_usd, organization).quantize(
        Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP
    )
    symbol = SYMBOLS.get(getattr(organization, "currency", "USD"), "US$")
    return f"{symbol} {formats.number_format(value, decimals, force_grouping=True)}"
