"""recipe: a declarative data-recipe language for curating instruction-tuning datasets."""
import os as _os

# offline, and no third-party progress bars over ours; tqdm reads these when first imported
for _k, _v in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false"),
               ("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TQDM_DISABLE", "1")):
    _os.environ.setdefault(_k, _v)

from .allocators import configure as _configure_allocators  # noqa: E402

_configure_allocators()

from .api import load  # noqa: E402,F401

__all__ = ["load"]
