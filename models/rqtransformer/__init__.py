"""RQ-Transformer family: RQ-VAE 8x8x4 tokenizer + class-conditional RQ-Transformer.

Exports are imported on first use (``models/lazy.py``), so ``official.py`` (the registered sizes'
configurations) imports without torch.
"""

from ..lazy import lazy_exports

_EXPORTS = {
    "FAMILY": ".family",
    "RQTransformerFamily": ".family",
    "RQVAE": ".rqvae",
    "RQVAEConfig": ".rqvae",
    "RQTransformer": ".transformer",
    "RQTransformerConfig": ".transformer",
}
__all__ = ['FAMILY', 'RQTransformerFamily', 'RQVAE', 'RQVAEConfig', 'RQTransformer', 'RQTransformerConfig']
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
