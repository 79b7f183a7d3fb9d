"""Transports to the world outside: WhatsApp through channel providers (``providers``: one
interface with declared capabilities, an adapter per provider — the Cloud API with its signed
webhook, the local sandbox emulator), the OpenAI-compatible client, and outgoing webhooks for
integrators.

The apps above catch only the neutral errors (``errors``), read only the neutral inbound events
(``events``) and ask a number's provider what it can do instead of knowing which one it is.
Depends only on ``accounts``; the apps above it subscribe to the domain events it publishes."""
