"""logtrain: forwards and transforms logs with very low overhead and routes them dynamically."""

__version__ = "0.1.0"
