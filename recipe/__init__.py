"""recipe: a declarative data-recipe language for curating instruction-tuning datasets."""
from .api import load  # noqa: F401

__all__ = ["load"]
