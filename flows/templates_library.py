"""Ready flows a clinic can start from (filled in below)."""


def choices() -> list:
    return []


def flow_from_template(*, organization, key: str, language: str, user=None):
    return None
