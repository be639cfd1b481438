"""The units of the measurements, each written once (no torch).

``bits`` of an image = Σ −log2 p(token) = Σ nll / ln 2 (nll in nats, summed in float64);
``bpp`` = bits / (3·H·W); ``bits_per_hw`` = bits / (H·W); ``bits_per_token`` = bits / L.
"""

import math

LN2 = math.log(2)   # nats per bit
MAX_BPP = 64.0      # bits per subpixel above which a value is a unit or column mistake (raw 8-bit RGB is 8)
