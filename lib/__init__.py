"""Shared code of the compendium: data, graphs, models, training, benchmarks (see README.md)."""

__version__ = "0.1.0"
