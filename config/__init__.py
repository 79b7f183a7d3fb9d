"""Project plumbing shared by every app: settings, URL and ASGI routing, the task runner
(``tasks.py``), live-event publishing (``realtime.py``) and the health check. Imports no app
except through the routing tables."""
