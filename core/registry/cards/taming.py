"""Taming cards: VQGAN f16-16384 + class-conditional 1.4B minGPT (spec: shared/specs/taming.md)."""

from visbpp.core.registry.cards import PUBLISHED_TABLE, TABLE_RFID_PROTOCOL
from visbpp.core.registry.catalog import CheckpointFile, ModelCard, Published, TokenizerCard

_VQGAN_URL = "https://heibox.uni-heidelberg.de/d/a7530b09fed84f80a887/"
_CIN_URL = "https://k00.fr/s511rwcv"

TOKENIZERS = (
    TokenizerCard(
        id="taming-vqgan-f16-16384",
        family="taming",
        params=76_073_859,
        codebook_size=16384,
        code_dim=256,
        downsample=16,
        file=CheckpointFile("tokenizer", "last.ckpt", _VQGAN_URL, "state_dict", repo=_VQGAN_URL,
                            archive_member="vqgan_imagenet_f16_16384/ckpts/last.ckpt"),
        rfid=((256, Published(4.98, "taming README, 'FID vs val' of VQGAN ImageNet (f=16), 16384",
                                  "reconstructions of ImageNet val vs ImageNet val, 256x256", guidance="none",
                                  eval_resolution=256)),),
        notes="Lightning checkpoint; its loss.* keys (LPIPS perceptual loss + PatchGAN discriminator) are not used.",
    ),
)

CARDS = (
    ModelCard(
        id="taming-1.4b",
        family="taming",
        family_label="VQGAN (Taming)",
        size="1.4B",
        params=1_410_640_896,
        resolution=256,
        tokenizer_id="taming-vqgan-f16-16384",
        codebook_size=16384,
        tokens_per_image=256,
        files=(CheckpointFile("transformer", "last.ckpt", _CIN_URL, "state_dict", repo=_CIN_URL,
                              archive_member="2021-04-03T19-39-50_cin_transformer/checkpoints/last.ckpt",
                              contains_tokenizer=True),),
        fid=Published(15.78, PUBLISHED_TABLE, "one of the README's cIN FIDs (15.98/15.78/6.59/5.88/5.20: decoding settings)"),
        rfid=Published(4.98, PUBLISHED_TABLE, TABLE_RFID_PROTOCOL, guidance="none"),
        # GPT sizes (n_layer, n_embd from the tensor shapes; n_head 16 inferred: every upstream GPT config uses 16)
        arch={"n_layer": 48, "n_head": 16, "n_embd": 1536},
        reference_bpp=0.0102383,
        aliases=("VQGAN (Taming Transformers) 1.4B", "VQGAN (Taming) 1.4B", "Taming 1.4B", "VQGAN 1.4B",
                 "cin_transformer"),
        in_published_table=True,
        notes="GPT 48 layers x 1536 wide, block 256, vocab 16384 (class id = raw row of the same token table); "
              "n_head 16 inferred, read from the run's configs/*-project.yaml when present. "
              "The transformer file also holds the whole VQGAN (first_stage_model.*).",
    ),
)
