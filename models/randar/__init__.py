"""RandAR family: decoder-only random-order GPT with position-instruction tokens, on LlamaGen's VQ-16 or
MaskGIT-VQGAN tokens (spec: shared/specs/randar.md).

Exports are imported on first use (``models/lazy.py``), so ``official.py`` (the registered models'
configurations and the default scoring order) imports without torch.
"""

from ..lazy import lazy_exports

_EXPORTS = {
    "FAMILY": ".family",
    "RandARFamily": ".family",
    "gpt_config": ".family",
    "maskgit_config": ".family",
    "tokenizer_kind": ".family",
    "RandAR": ".model",
    "RandARMaskGIT": ".tokenizer",
}
__all__ = ['FAMILY', 'RandAR', 'RandARFamily', 'RandARMaskGIT', 'gpt_config', 'maskgit_config', 'tokenizer_kind']
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
