"""Tenants, people and roles: organizations, memberships, invitations, sign-in (django-allauth),
the role matrix (``access.py``) and the middleware that resolves the current organization.

Every other app depends on this one; it depends on none of them.
"""
