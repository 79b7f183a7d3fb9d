"""Campaigns and automations: segments, template broadcasts (now, scheduled, recurring),
throttled crash-safe dispatch, opt-out handling, drips and event-driven rules."""
