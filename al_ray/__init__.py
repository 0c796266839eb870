"""al_ray: the active-learning loop on Ray."""

__version__ = "0.1.0"
