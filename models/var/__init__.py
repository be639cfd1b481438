"""VAR family: multi-scale residual VQVAE + next-scale (VAR) transformer (spec: shared/specs/var.md).

Exports are imported on first use (``models/lazy.py``), so ``official.py`` (the registered sizes'
configurations) imports without torch.
"""

from ..lazy import lazy_exports

_EXPORTS = {
    "FAMILY": ".family",
    "VARFamily": ".family",
    "VAR": ".transformer",
    "VARConfig": ".transformer",
    "VQVAE": ".vqvae",
    "VQVAEConfig": ".vqvae",
    "phi_table": ".vqvae",
}
__all__ = ['FAMILY', 'VARFamily', 'VAR', 'VARConfig', 'VQVAE', 'VQVAEConfig', 'phi_table']
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
