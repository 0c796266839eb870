"""Config section for human labeling (labels.source: human)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from al_ray.config_base import Section

__all__ = ["LabelingConfig"]


class LabelingConfig(Section):
    """Settings for human labeling (labels.source: human): the task queue, aggregation and the page."""

    answers_per_task: int = Field(
        1, ge=1, le=50, description="answers from different annotators each task needs before it is resolved (k)"
    )
    max_answers_per_task: int | None = Field(
        None,
        ge=1,
        le=50,
        description="with tie_rule defer, a tied task asks one more annotator up to this many answers; "
        "default: answers_per_task + 2",
    )
    lease_timeout_s: float = Field(
        300.0, gt=0, description="seconds an annotator holds a task before it returns to the queue"
    )
    gold_rate: float = Field(
        0.0,
        ge=0.0,
        le=0.5,
        description="share of the tasks shown to an annotator that are gold rows with a known label, in [0, 0.5]",
    )
    gold_source: Literal["labeled"] = Field(
        "labeled", description="labeled: gold rows are sampled from rows already labeled in earlier rounds"
    )
    aggregation: Literal["auto", "majority", "dawid_skene"] = Field(
        "auto",
        description="how answers become one label: majority vote, Dawid-Skene, or auto "
        "(Dawid-Skene once every annotator has min_answers_per_annotator answers)",
    )
    tie_rule: Literal["defer", "first", "random"] = Field(
        "defer",
        description="majority-vote ties: defer (ask one more annotator, then random), "
        "first (the tied label answered first), random (seeded)",
    )
    min_answers_per_annotator: int = Field(
        20, ge=1, description="answers every annotator needs before aggregation auto switches to Dawid-Skene"
    )
    quota: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="share of the pending tasks that must be answered before a round trains, in (0, 1]; "
        "the round trains earlier only if loop.collect_timeout_s passes",
    )
    host: str = Field("127.0.0.1", min_length=1, description="address `al-ray label serve` binds")
    port: int = Field(8300, ge=0, le=65535, description="port `al-ray label serve` listens on; 0 picks a free one")
    max_body_bytes: int = Field(
        16384, ge=256, description="largest request body the labeling service accepts, in bytes"
    )
    display: Literal["auto", "image", "text", "table"] = Field(
        "auto", description="how the page shows a row; auto: image for image datasets, text for text, else a table"
    )
    image_shape: list[int] | None = Field(
        None, description="(height, width) or (height, width, channels) of an image row; default: the dataset's"
    )
    cost_per_label: float | None = Field(
        None, ge=0.0, description="cost of one human answer, in the user's currency; unset: unknown"
    )

    @field_validator("image_shape")
    @classmethod
    def _check_image_shape(cls, shape: list[int] | None) -> list[int] | None:
        if shape is None:
            return None
        if len(shape) not in (2, 3) or any(size < 1 for size in shape):
            raise ValueError(
                f"image_shape must be [height, width] or [height, width, channels] of positive sizes, "
                f"got {shape}; MNIST is [28, 28]"
            )
        return shape

    @model_validator(mode="after")
    def _check_answer_limit(self) -> LabelingConfig:
        if self.max_answers_per_task is not None and self.max_answers_per_task < self.answers_per_task:
            raise ValueError(
                f"max_answers_per_task ({self.max_answers_per_task}) must be at least answers_per_task "
                f"({self.answers_per_task}); raise it or leave it unset for answers_per_task + 2"
            )
        return self

    @property
    def max_answers(self) -> int:
        """Most answers one task may collect: ``max_answers_per_task``, or ``answers_per_task + 2``."""
        if self.max_answers_per_task is not None:
            return self.max_answers_per_task
        return self.answers_per_task + 2
