"""AI assistants: builder, knowledge base, auto-replies with human handoff, playground and
conversation analysis, through the OpenAI-compatible client in ``integrations``."""
