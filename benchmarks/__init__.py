"""Benchmarks for al_ray; each module writes its results under benchmarks/results/."""
