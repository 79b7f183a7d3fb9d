"""Thin tasks: they take ids and call ``flows.runtime`` (which makes every step idempotent)."""

from flows import runtime


def run_steps(run_id: int, index: int) -> None:
    runtime.run_steps(run_id, index)


def sweep() -> None:
    runtime.sweep()


def ai_step(run_id: int, index: int) -> None:
    from flows import ai_steps

    ai_steps.ai_step(run_id, index)
