"""PAR cards: LlamaGen-384's GPT sizes scoring the same VQ-16 tokens in PAR's group-parallel order
(spec: shared/specs/par.md).

The four released files of the hub repository ``Epiphqny/PAR``. Each GPT is the LlamaGen GPT of the
same size plus n - 1 special embeddings (n = ``arch["ar_token_num"]``: 4, or 16 for PAR-3B-16x); the
tokenizer is LlamaGen's ``vq_ds16_c2i.pt`` at 384 (the PAR README links LlamaGen's own file), so the
tokens, the token cache and the rFID are LlamaGen-384's. FIDs: the README's "AR models" table (the
same values as the paper's Table 2), with guidance at the README's per-model scale; no FID without
guidance is published. ``compare`` names the LlamaGen-384 model of the same size on the same tokens.
"""

from visbpp.core.registry.cards import llamagen as _llamagen
from visbpp.core.registry.catalog import CheckpointFile, ModelCard, Published

_HF = "hf:Epiphqny/PAR"
_URL = "https://huggingface.co/Epiphqny/PAR/resolve/main/"
_SOURCE = "PAR README, AR-models table, FID (256x256) (= paper arXiv 2412.15119, Table 2)"
_PROTO = ("classifier-free guidance cfg {cfg} (README sampling command), {steps} steps; 50k samples generated at 384, "
          "resized to 256 (bicubic), ADM evaluator vs VIRTUAL_imagenet256_labeled.npz")
_RFID = dict(_llamagen.TOKENIZERS[0].rfid)[384]   # LlamaGen's 24x24 (384) figure: the same file and tokens
_LLAMAGEN = {c.id: c for c in _llamagen.CARDS}

TOKENIZERS = ()  # the tokenizer is LlamaGen's llamagen-vq16


def _card(*, gpt: str, n: int, params: int, fid: float, cfg: float, aliases: tuple[str, ...] = ()) -> ModelCard:
    base = _LLAMAGEN[f"llamagen-{gpt.lower()}-384"]   # same GPT size, same tokens
    name = f"PAR-{gpt}-{n}x"
    grid = base.resolution // 16
    steps = n + grid * grid // n - 1
    return ModelCard(
        id=name.lower(),
        family="par",
        family_label="PAR",
        size=f"{base.size.split(' ')[0]} ({gpt}-{n}x, n={n})",
        params=params,
        resolution=base.resolution,
        tokenizer_id=base.tokenizer_id,
        codebook_size=base.codebook_size,
        tokens_per_image=base.tokens_per_image,
        files=(CheckpointFile("transformer", f"{name}.pt", f"{_URL}{name}.pt", "model", repo=_HF),),
        fid=Published(fid, _SOURCE, _PROTO.format(cfg=cfg, steps=steps), guidance=f"cfg {cfg}", eval_resolution=256,
                      origin="readme"),
        rfid=_RFID,
        aliases=(name,) + aliases,
        group="PAR-384",
        arch={**base.arch, "ar_token_num": n},
        compare=base.compare,
        notes=(f"{base.id}'s GPT + {n - 1} special embeddings scoring its tokens in PAR order: {n} sequential tokens "
               f"(one per region), then {grid * grid // n - 1} groups of {n} tokens, each group in parallel; "
               f"container 'model' inferred from the official sampler."),
    )


CARDS = (
    _card(gpt="XL", n=4, params=774_703_360, fid=2.61, cfg=1.5, aliases=("PAR-XL",)),
    _card(gpt="XXL", n=4, params=1_410_977_280, fid=2.35, cfg=1.435, aliases=("PAR-XXL",)),
    _card(gpt="3B", n=4, params=3_096_668_800, fid=2.29, cfg=1.345),
    _card(gpt="3B", n=16, params=3_096_707_200, fid=2.88, cfg=1.5),
)
