"""Remember who is acting and from which IP for the length of a request, so audit receivers of
model signals (which get no request) can record actor and IP."""

from contextvars import ContextVar

current_request: ContextVar = ContextVar("audit_request", default=None)


class AuditContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            current_request.reset(token)
