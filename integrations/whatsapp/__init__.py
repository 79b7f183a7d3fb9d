"""WhatsApp Cloud API transport: client, webhook parsing and signing, and a local emulator.

Modules:

- ``errors``: typed exceptions and the mapping from Graph error bodies (and webhook errors) to them.
- ``signature``: ``X-Hub-Signature-256`` signing and constant-time verification.
- ``payloads``: webhook parsing into frozen dataclasses, and the ``build_*`` helpers that produce
  Meta-shaped webhook bodies (the sandbox uses them, so parser and emulator share one definition).
- ``validation``: the Cloud API limits, checked by the client before a call and by the sandbox.
- ``client``: ``CloudAPIClient``, a pooled, retrying HTTP client for the Graph API.
- ``sandbox``: ``SandboxApp``, an ASGI emulator of the Graph endpoints the client uses.

This package is plain Python: it imports nothing from the Django apps above it, so the product
can wire it into models, views and tasks without import cycles.
"""
