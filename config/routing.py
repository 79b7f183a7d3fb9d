"""Websocket routes of every app, in one table."""

from django.urls import path

from inbox.consumers import LiveConsumer

websocket_urlpatterns = [
    path("ws/live/", LiveConsumer.as_asgi()),
]
