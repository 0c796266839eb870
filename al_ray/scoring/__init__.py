"""Pool scoring: in-process for small pools, Ray Data actor pools for large ones."""

from al_ray.scoring.result import ScoringResult
from al_ray.scoring.scorer import choose_path, score_pool

__all__ = ["ScoringResult", "choose_path", "score_pool"]
