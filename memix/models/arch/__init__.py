"""Comparison architectures from the MER literature, one module each (see memix.models.registry)."""
