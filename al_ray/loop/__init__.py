"""The orchestration of active-learning rounds, and resume."""

from al_ray.loop.runner import ActiveLearningLoop, RoundRecord, RunResult, default_output_dir

__all__ = ["ActiveLearningLoop", "RoundRecord", "RunResult", "default_output_dir"]
