"""memix: micro-expression recognition with motion-aware mixup, as a reproducible DVC pipeline."""

__version__ = "0.2.0"
