"""Hita tokenizer: LlamaGen's CNN encoder/decoder and quantiser rule, a holistic/patch transformer
with a frozen DINOv2 branch, and two codebooks (holistic and patch).

Tokens of one image: [q_0 .. q_{Nc-1}, z_0 .. z_{h*w-1}]: the Nc holistic codes in carrier order
(``slot_quantize``), then the patch codes in raster order (``quantize``). Both index ranges are
0..codebook_size-1 but they name different codebooks; the GPT keeps them apart by position.
Attribute names equal the official state-dict keys; the ViT under
``encode_transformer.backbone.pretrained_encoder`` is not in the released files and loads from
its own checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from PIL import Image
from torch import nn

from visbpp.core.errors import ConfigError

from ..llamagen.preprocess import preprocess as llamagen_preprocess
from ..llamagen.preprocess import preprocess_id as llamagen_preprocess_id
from ..llamagen.tokenizer import CodebookCNNConfig, Decoder, Encoder, VectorQuantizer, check_token_values
from .holistic import HoloConfig, HoloDecoder, HoloEncoder
from .vit import ViTConfig, dino_input

BACKBONE_PREFIX = "encode_transformer.backbone.pretrained_encoder."


@dataclass(frozen=True)
class HitaVQConfig(CodebookCNNConfig):
    codebook_slots_embed_dim: int = 12
    z_channels: int = 512
    ch: int = 128
    num_res_blocks: int = 2
    in_channels: int = 3
    out_channels: int = 3
    image_size: int = 336
    encoder: HoloConfig = field(default_factory=HoloConfig)
    decoder: HoloConfig = field(default_factory=HoloConfig)
    vit: ViTConfig = field(default_factory=ViTConfig)

    @property
    def variant(self) -> str:
        """"ultra" when the decoder carries the VFM head, else "vanilla" (the two released tokenizers)."""
        return "ultra" if self.decoder.enable_vfm_recon else "vanilla"


class HitaTokenizer(nn.Module):
    """Implements ``visbpp.core.interfaces.ImageTokenizer``."""

    family = "hita"

    def __init__(self, cfg: HitaVQConfig):
        super().__init__()
        if cfg.image_size % cfg.downsample:
            raise ConfigError(f"image_size {cfg.image_size} is not a multiple of the downsampling factor {cfg.downsample}")
        if cfg.grid**2 != cfg.encoder.num_patches or cfg.grid**2 != cfg.decoder.num_patches:
            raise ConfigError(f"the {cfg.grid}x{cfg.grid} CNN grid does not match the transformers' "
                             f"{cfg.encoder.num_patches}/{cfg.decoder.num_patches} patch positions")
        if cfg.encoder.n_carrier != cfg.decoder.n_carrier:
            raise ConfigError("encoder and decoder must have the same number of holistic tokens (n_carrier)")
        if cfg.encoder.dim != cfg.z_channels or cfg.decoder.dim != cfg.z_channels:
            raise ConfigError(f"transformer dim must equal z_channels {cfg.z_channels}")
        self.cfg = cfg
        self.image_size = cfg.image_size
        self.grid = cfg.grid
        self.num_holistic = cfg.encoder.n_carrier
        self.tokens_per_image = self.num_holistic + cfg.grid * cfg.grid
        self.vocab_size = cfg.codebook_size
        self.preprocess_id = llamagen_preprocess_id(cfg.image_size).replace("llamagen:", "hita:", 1)
        self.encoder = Encoder(cfg.ch, cfg.encoder_ch_mult, cfg.num_res_blocks, cfg.in_channels, cfg.z_channels)
        self.decoder = Decoder(cfg.ch, cfg.decoder_ch_mult, cfg.num_res_blocks, cfg.out_channels, cfg.z_channels)
        self.encode_transformer = HoloEncoder(cfg.encoder, cfg.vit)
        self.decode_transformer = HoloDecoder(cfg.decoder)
        self.quantize = VectorQuantizer(cfg.codebook_size, cfg.codebook_embed_dim, cfg.codebook_l2_norm, cfg.codebook_show_usage)
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.codebook_embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(cfg.codebook_embed_dim, cfg.z_channels, 1)
        self.slot_quantize = VectorQuantizer(cfg.codebook_size, cfg.codebook_slots_embed_dim, cfg.codebook_l2_norm,
                                             cfg.codebook_show_usage)
        self.pre_slots_quant = nn.Linear(cfg.z_channels, cfg.codebook_slots_embed_dim)
        self.post_slots_quant = nn.Linear(cfg.codebook_slots_embed_dim, cfg.z_channels)

    @property
    def backbone(self) -> nn.Module:
        return self.encode_transformer.backbone.pretrained_encoder

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return llamagen_preprocess(image, self.image_size)

    def dino_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in [-1, 1] -> (B, 1 + n, vit_dim) [cls, patch tokens] of the frozen ViT."""
        return self.backbone(dino_input(x))

    def latents(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, S, S) -> (z (B, embed_dim, h, w) patch latent, slots (B, Nc, slots_dim)) before quantisation."""
        if x.ndim != 4 or x.shape[1] != self.cfg.in_channels or x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(f"encode expects (B, {self.cfg.in_channels}, {self.image_size}, {self.image_size}), got {tuple(x.shape)}")
        with torch.autocast(device_type=x.device.type, enabled=False):
            # Channels-last activations, the layout of the reference run (HWC pixels permuted to CHW): a fixed
            # layout makes the CNN's rounding independent of how the caller built the batch.
            x = x.float().contiguous(memory_format=torch.channels_last)
            h = self.encoder(x)  # (B, z_channels, h, w)
            z, carriers = self.encode_transformer(self.dino_features(x), h)
            return self.quant_conv(z), self.pre_slots_quant(carriers)

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        z, slots = self.latents(x)
        patch = self.quantize.indices(z)  # (B, h*w) raster
        holistic = self.slot_quantize.indices(slots.transpose(1, 2).unsqueeze(-1))  # (B, Nc) carrier order
        return torch.cat([holistic, patch], dim=1)

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 2 or tokens.shape[1] != self.tokens_per_image:
            raise ValueError(f"decode expects (B, {self.tokens_per_image}) tokens, got {tuple(tokens.shape)}")
        check_token_values(tokens, self.vocab_size)
        nc = self.num_holistic
        z = self.quantize.lookup(tokens[:, nc:], (self.grid, self.grid))
        slots = self.slot_quantize.codebook()[tokens[:, :nc]]  # (B, Nc, slots_dim)
        h = self.decode_transformer(self.post_quant_conv(z), self.post_slots_quant(slots))
        return self.decoder(h)
