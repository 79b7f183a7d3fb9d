"""Helpers for the tenant sweeps (tests/accounts/test_tenant_sweep.py, tests/api/...): what
organization B owns, and whether anything of A's now points at it."""

import uuid

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist

from accounts.models import Organization


def missing_kwargs(kwargs: dict) -> dict:
    """The same kwargs pointing at no object at all (a fresh UUID, an id nobody has)."""
    return {
        name: uuid.uuid4() if isinstance(value, uuid.UUID) else 2**31 - 1
        for name, value in kwargs.items()
    }


def _tenant_models():
    for model in apps.get_models():
        try:
            field = model._meta.get_field("organization")
        except FieldDoesNotExist:
            continue
        if field.is_relation and field.related_model is Organization:
            yield model


def tenant_rows(organization) -> dict:
    """Every row an organization owns, every column: to show that nothing of it changed."""
    return {
        model._meta.label: list(
            model._default_manager.filter(organization=organization).order_by("pk").values()
        )
        for model in _tenant_models()
    }


def cross_tenant_links(organization, other) -> list[str]:
    """Rows of ``organization`` that point at an object of ``other`` (or at one of its people):
    what a form accepting a foreign id would leave behind."""
    user_model = get_user_model()
    found = []
    for model in _tenant_models():
        own = model._default_manager.filter(organization=organization)
        for field in model._meta.get_fields():
            forward = (
                field.concrete
                and field.is_relation
                or (field.many_to_many and not field.auto_created)
            )
            if not forward or field.name == "organization":
                continue
            related = field.related_model
            if related is user_model:
                links = own.filter(**{f"{field.name}__memberships__organization": other}).exclude(
                    **{f"{field.name}__memberships__organization": organization}
                )
            elif related in set(_tenant_models()):
                links = own.filter(**{f"{field.name}__organization": other})
            else:
                continue
            if links.exists():
                found.append(f"{model._meta.label}.{field.name}")
    return found
