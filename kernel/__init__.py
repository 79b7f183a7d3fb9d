"""The kernel: plumbing every app imports and that imports no app.

Background tasks in both modes (``tasks``), live events to browsers (``realtime``), per-process
memos of rarely-changing rows (``memo``), send pacing shared by every process (``pacing``),
admission of Django requests (``admission``), health endpoints (``health``) and the PWA files
(``pwa``). It sits below ``accounts``; ``config`` sits on top and only wires settings, URLs,
ASGI, logging and websocket routing.
"""
