"""A local WhatsApp Cloud API emulator ("sandbox") as a plain ASGI 3 application.

Graph API routes (``Authorization: Bearer <number's access_token>``):

- ``POST /{v}/{phone_number_id}/messages``: send, mark as read, typing indicator
- ``POST /{v}/{phone_number_id}/media`` (multipart), ``GET`` / ``DELETE /{v}/{media_id}``
- ``GET /whatsapp_business/attachments/?mid=...``: the media download URL (5-minute, bearer)
- ``GET`` / ``POST`` / ``DELETE /{v}/{waba_id}/message_templates``, ``GET /{v}/{template_id}``
- ``GET /{v}/{phone_number_id}``: phone number info

Control API (JSON, optional ``X-Sandbox-Token``):

- ``GET /_sandbox/``; ``GET`` / ``POST /_sandbox/numbers`` (register or update a number)
- ``GET`` / ``DELETE /_sandbox/numbers/{pnid}``
- ``GET /_sandbox/numbers/{pnid}/messages?wa_id=&direction=`` (the conversation log)
- ``GET /_sandbox/numbers/{pnid}/deliveries`` (webhook attempts)
- ``GET`` / ``POST`` / ``DELETE /_sandbox/numbers/{pnid}/failures`` (failure injection; modes
  ``sync``, ``status``, ``accept_fail`` and ``accept_timeout``: see ``state.Failure``)
- ``POST /_sandbox/numbers/{pnid}/inbound`` (act as a customer)
- ``GET /_sandbox/templates``, ``POST /_sandbox/templates/{id}/status``
- ``POST /_sandbox/reset``

Mount it inside another ASGI app with ``mount("/sandbox", SandboxApp(), django_app)``, or run it
with ``manage.py whatsapp_sandbox`` or ``SandboxServer`` (a thread, for tests).
"""

from .app import SandboxApp
from .http import mount
from .server import SandboxServer
from .state import ControlError, NumberConfig

__all__ = ["ControlError", "NumberConfig", "SandboxApp", "SandboxServer", "mount"]
