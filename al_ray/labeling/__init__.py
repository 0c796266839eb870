"""Human labeling: the task queue, answer aggregation, agreement, and the labeling service."""
