"""VFMTok tokenizer: a frozen DINOv2 ViT read at four levels, a region-adaptive deformable encoder
from Nc carrier queries, one l2-normalised codebook; token decoder + LlamaGen's pixel decoder for
reconstructions.

Encode: x (B, 3, S, S) in [-1, 1] -> DINOv2 input (bicubic to the fixed DINO side, clamp, (x+1)/2,
ImageNet mean/std: Hita's rule) -> levels (raw blocks ``taps`` + final-normed last block, patch
tokens only) -> ``encode_transformer`` (B, Nc, D) -> ``pre_slots_quant`` (B, Nc, slots_dim) ->
``slot_quantize`` (LlamaGen's rule: nearest l2-normalised code, first minimum). Token k = carrier k,
raster order over the G x G carrier grid. Attribute names equal the official state-dict keys; the
ViT under ``encode_transformer.backbone.pretrained_encoder`` is not in the released file and loads
from its own checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from PIL import Image
from torch import nn

from ..hita.vit import ViTConfig, dino_input
from ..llamagen.preprocess import preprocess as llamagen_preprocess
from ..llamagen.preprocess import preprocess_id as llamagen_preprocess_id
from ..llamagen.tokenizer import Decoder, VectorQuantizer, check_token_values
from .deformable import RegionConfig
from .transformers import RegionEncoder, TokenDecoder, TokenDecoderConfig

BACKBONE_PREFIX = "encode_transformer.backbone.pretrained_encoder."


@dataclass(frozen=True)
class VFMTokConfig:
    image_size: int = 336
    codebook_size: int = 16384
    slots_dim: int = 12                  # codebook_slots_embed_dim
    codebook_show_usage: bool = True     # the (inference-irrelevant) ``codebook_used`` buffer
    z_channels: int = 512
    decoder_ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    ch: int = 128                        # pixel decoder base width
    num_res_blocks: int = 1              # pixel decoder: num_res_blocks + 1 ResnetBlocks per level
    out_channels: int = 3
    dino_side: int = 336                 # DINOv2 input side (fixed upstream)
    dino_taps: tuple[int, ...] = (5, 11, 17)  # raw levels after these blocks (0-based); + the final norm
    encoder: RegionConfig = field(default_factory=RegionConfig)
    decoder: TokenDecoderConfig = field(default_factory=TokenDecoderConfig)
    vit: ViTConfig = field(default_factory=ViTConfig)


class VFMTokTokenizer(nn.Module):
    """Implements ``visbpp.core.interfaces.ImageTokenizer``."""

    family = "vfmtok"

    def __init__(self, cfg: VFMTokConfig):
        super().__init__()
        self.cfg = cfg
        self.image_size = cfg.image_size
        self.tokens_per_image = cfg.encoder.n_carrier
        self.vocab_size = cfg.codebook_size
        self.preprocess_id = llamagen_preprocess_id(cfg.image_size).replace("llamagen:", "vfmtok:", 1)
        self.decoder = Decoder(cfg.ch, cfg.decoder_ch_mult, cfg.num_res_blocks, cfg.out_channels, cfg.z_channels,
                               up_attn=False)
        self.encode_transformer = RegionEncoder(cfg.encoder, cfg.vit)
        self.decode_transformer = TokenDecoder(cfg.decoder)
        self.slot_quantize = VectorQuantizer(cfg.codebook_size, cfg.slots_dim, True, cfg.codebook_show_usage)
        self.pre_slots_quant = nn.Linear(cfg.z_channels, cfg.slots_dim)
        self.post_slots_quant = nn.Linear(cfg.slots_dim, cfg.z_channels)

    @property
    def backbone(self) -> nn.Module:
        return self.encode_transformer.backbone.pretrained_encoder

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return llamagen_preprocess(image, self.image_size)

    def dino_levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, S, S) in [-1, 1] -> the four DINOv2 levels, each (B, (side/patch)^2, vit_dim)."""
        return self.backbone.levels(dino_input(x, self.cfg.dino_side), self.cfg.dino_taps)

    def carriers(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> carrier features (B, Nc, D) (``enc_out``)."""
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(f"encode expects (B, 3, {self.image_size}, {self.image_size}), got {tuple(x.shape)}")
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self.encode_transformer(self.dino_levels(x.float()))

    def latents(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> quantiser input (B, Nc, slots_dim) (``slots_pre``)."""
        return self.pre_slots_quant(self.carriers(x))

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        z = self.latents(x)
        return self.slot_quantize.indices(z.transpose(1, 2).unsqueeze(-1))  # (B, Nc) carrier order

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 2 or tokens.shape[1] != self.tokens_per_image:
            raise ValueError(f"decode expects (B, {self.tokens_per_image}) tokens, got {tuple(tokens.shape)}")
        check_token_values(tokens, self.vocab_size)
        codes = self.slot_quantize.codebook()[tokens]  # (B, Nc, slots_dim), l2-normalised rows
        return self.decoder(self.decode_transformer(self.post_slots_quant(codes)))
