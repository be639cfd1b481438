"""PAR family: LlamaGen's VQ-16 tokenizer and GPT trunk in PAR's group-parallel order (spec: shared/specs/par.md).

Exports are imported on first use (``models/lazy.py``), so ``official.py`` (the registered sizes'
configurations) imports without torch.
"""

from ..lazy import lazy_exports

_EXPORTS = {
    "FAMILY": ".family",
    "ConfigError": "visbpp.core.errors",
    "PARFamily": ".family",
    "par_config": ".family",
    "PARConfig": ".gpt",
    "PARGPT": ".gpt",
    "group_mask": ".gpt",
    "permutation": ".order",
}
__all__ = ['FAMILY', 'ConfigError', 'PARConfig', 'PARFamily', 'PARGPT', 'group_mask', 'par_config', 'permutation']
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
