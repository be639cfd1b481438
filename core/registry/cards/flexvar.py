"""FlexVAR cards: one FlexVAE tokenizer and the d16/d20/d24 next-scale transformers on it
(spec: shared/specs/flexvar.md).

All three transformers score on ``FlexVAE.pth`` (LlamaGen's VQ-16 network, 8912 x 32 cosine
codebook), so they form one fit group. Their tokens are a pyramid of independent quantisations
of the latent (no residual): bits are the code length of the whole pyramid under the 10-step
schedule (1,2,3,4,5,6,8,10,13,16) = 680 tokens, BPP = bits / (3 * 256 * 256). The schedule is
``arch["scale_schedule"]``; another (``scale_schedule`` in a ``--config`` file) is another model
with other tokens.
"""

from visbpp.core.registry.catalog import CheckpointFile, ModelCard, Published, TokenizerCard

_HF = "hf:jiaosiyu1999/FlexVAR"
_URL = "https://huggingface.co/jiaosiyu1999/FlexVAR/resolve/main/"
_README = "FlexVAR README, 'VAR zoo' table (column Step = 10)"
_ABSTRACT = "FlexVAR (arXiv 2502.20313) abstract and README introduction"
_PROTOCOL = ("ImageNet 256x256, 50k samples (50 per class), ADM evaluator vs VIRTUAL_imagenet256_labeled.npz; "
             "10-step schedule (1,2,3,4,5,6,8,10,13,16), top_k 900, top_p 0.95, VAR-style guidance ramp")
_CFG = "cfg (scale not stated; eval_c2i.py default 4, README example 2.5)"
# Scale schedules of the upstream README and scripts, by number of steps: 10 = the constructor's and
# eval_c2i.py's default (the README FIDs, 680 tokens); 9 = evaluate_c2i.sh (629); 13 = the abstract's FID (981).
SCHEDULES = {
    10: (1, 2, 3, 4, 5, 6, 8, 10, 13, 16),
    9: (1, 2, 3, 4, 5, 7, 10, 13, 16),
    13: (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16),
}

_LABEL_DROPOUT = ("label dropout: upstream forward() replaces labels by the null class with cond_drop_rate 0.1 even "
                  "in eval mode (as VAR); visbpp never drops labels: class-conditional BPP")
_SCHEDULES = ("schedule: the 10-step default (680 tokens, the README FIDs); 9-step (1,2,3,4,5,7,10,13,16) = 629 "
              "and 13-step (1..10,12,14,16) = 981 tokens via scale_schedule in a --config file (other tokens, "
              "another model id and token cache)")
_BITS = "bits = the whole token pyramid (coarse scales are side information: only the last scale is decoded)"
_RESOLUTION = ("input 256 (center_crop_arr, [-1, 1]; latent 16x16 = the last scale). Training resolution, settled "
               "from the public code: train.py -> dataset/imagenet.py random_crop_arr(final_reso) with final_reso "
               "512 (utils/arg_util.py; scripts/train.sh does not override it; the data_load_reso=256 argument is "
               "commented out), i.e. 512x512 crops whose 32x32 latent is area-pooled to scales <= 16 (the README's "
               "'<= 256px' matches the 16x16 top scale); image_size 512 in a --config scores that input "
               "(bits / (3 * 512 * 512), no reconstruction)")

TOKENIZERS = (
    TokenizerCard(
        id="flexvae",
        family="flexvar",
        params=72_049_827,
        codebook_size=8912,
        code_dim=32,
        downsample=16,
        file=CheckpointFile("tokenizer", "FlexVAE.pth", _URL + "FlexVAE.pth", "model", repo=_HF),
        rfid=(),  # no rFID of FlexVAE is published
        notes=("LlamaGen's VQ-16 network (ch 128, z 256) with an l2-normalised 8912 x 32 codebook; file "
               "{'model': state_dict}. Each scale quantises the latent area-pooled to that size on its own (no "
               "residual); only the last scale is decoded. No published rFID."),
    ),
)


def _card(*, depth: int, epoch: int, params: int, fid: float, fid_is: float, extra_alt=()) -> ModelCard:
    fname = f"FlexVARd{depth}-epo{epoch}.pth"  # epoch = the 0-based last epoch (180 / 250 / 350 trained)
    return ModelCard(
        id=f"flexvar-d{depth}",
        family="flexvar",
        family_label="FlexVAR",
        size=f"{params / 1e6:.0f}M (d{depth})" if params < 1e9 else f"{params / 1e9:.2f}B (d{depth})",
        params=params,
        resolution=256,
        tokenizer_id="flexvae",
        codebook_size=8912,
        tokens_per_image=sum(p * p for p in SCHEDULES[10]),
        files=(CheckpointFile("transformer", fname, _URL + fname, None, repo=_HF),),
        fid=Published(fid, f"{_README}, row d{depth} (IS {fid_is})", _PROTOCOL, guidance=_CFG, eval_resolution=256,
                      origin="readme"),
        rfid=None,
        alt_fid=tuple(extra_alt),
        reference_bpp=None,
        aliases=(f"FlexVAR-d{depth}", fname.removesuffix(".pth")),
        in_published_table=False,
        arch={"depth": depth, "scale_schedule": SCHEDULES[10]},
        notes="; ".join((_LABEL_DROPOUT, _SCHEDULES, _BITS, _RESOLUTION)),
    )


CARDS = (
    _card(depth=16, epoch=179, params=315_561_936, fid=3.05, fid_is=291.3),
    _card(depth=20, epoch=249, params=607_513_952, fid=2.41, fid_is=299.3),
    _card(depth=24, epoch=349, params=1_041_314_576, fid=2.21, fid_is=299.1, extra_alt=(
        Published(2.08, _ABSTRACT, "13-step schedule (1..10,12,14,16), zero-shot step transfer, ImageNet 256x256; "
                  "attributed to 'our 1.0B model' (d24) by the sentence before it; the README's 13-step example "
                  "command uses --depth 20; not the 10-step tokens this card scores", guidance=_CFG,
                  eval_resolution=256, origin="paper"),
    )),
)
