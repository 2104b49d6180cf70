"""What every front end receives: one :class:`Answer` per prompt (or window)."""

from __future__ import annotations

from dataclasses import dataclass

from .checks import Check


@dataclass
class Answer:
    """The task, the model's answer, its probability (every label's for a classification), the exact
    check where the task has one, and which model and runtime answered."""

    index: int
    prompt: str
    task: str
    question: str
    answer: str | None
    probability: float | None
    labels: dict[str, float] | None
    check: Check | None
    model: str | None
    runtime: str | None
    id: str | None = None
    window: tuple[int, int] | None = None  # 1-based inclusive coordinates on the record
    note: str | None = None

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "id": self.id,
            "task": self.task,
            "question": self.question,
            "answer": self.answer,
            "probability": self.probability,
            "labels": self.labels,
            "check": self.check.to_dict() if self.check else None,
            "model": self.model,
            "runtime": self.runtime,
            "window": list(self.window) if self.window else None,
            "note": self.note,
            "prompt": self.prompt,
        }


def exact_value(prompt) -> str | None:
    """The task's exact computation for this prompt, if the task has one."""
    task = prompt.task
    if task.checker is None:
        return None
    return task.checker(prompt.sequence, prompt.question, prompt.annotations)
