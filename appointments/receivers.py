"""Subscriptions of the appointments app (router handler, tools, events)."""
