"""Transports to the world outside: the WhatsApp Cloud API (client, signed webhook, local
sandbox emulator), the OpenAI-compatible client, and outgoing webhooks for integrators.

Depends only on ``accounts``; the apps above it subscribe to the domain events it publishes."""
