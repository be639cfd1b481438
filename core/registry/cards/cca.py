"""CCA fine-tunes: LlamaGen (B/L/XL/XXL/3B @384) and VAR (d16/d20/d24/d30) after Condition Contrastive
Alignment, a one-epoch fine-tune that makes the models sample well without guidance.

Same modules, tokenizers and key names as the base models (the base family's loader is used);
only the weights and the training objective differ, so base vs CCA per size tests whether BPP
follows FID when only the objective changes. Files and containers, as the fine-tuning code writes
and its samplers read them:

* LlamaGen B/L/XL (DDP fine-tune): ``{"model": state_dict}`` (an ``"ema"`` state dict beside it when
  trained with EMA; the sampler scores ``"model"``), keys without ``module.``/``_orig_mod.`` prefixes.
* LlamaGen XXL/3B (FSDP fine-tune): the consolidated full state dict itself (bare).
* VAR: the released ``VAR_d*_CCA.pth`` are bare state dicts (loaded strictly by the sampler); the
  fine-tuning run's own ``ar-ckpt-last.pth`` is ``{"epoch", "iter", "trainer": state_dict, "args"}``.
"""

from visbpp.core.registry.cards import llamagen as _llamagen
from visbpp.core.registry.cards import var as _var
from visbpp.core.registry.catalog import CheckpointFile, ModelCard, Published

PAPER = "Chen et al., 'Toward Guidance-Free AR Visual Generation via Condition Contrastive Alignment' (arXiv 2410.09347)"
_README = "CCA README (thu-ml/CCA), model zoo '{table}', column 'FID (w/o CFG)', row '{row}'"
_LG_HF = "hf:ChenDRAG/CCA_LlamaGen"
_VAR_HF = "hf:ChenDRAG/CCA_VAR"
_LG_DIR = "CCA_LlamaGen_Guidance_Free/"
_VAR_DIR = "CCA_VAR_Guidance_Free/"
_LG_PROTO = ("without guidance (cfg scale 1.0), 50k samples generated at 384 and evaluated at 256 "
             "(ADM evaluator, VIRTUAL_imagenet256_labeled.npz)")
_VAR_PROTO = "without guidance (cfg 0), 50k samples at 256 (ADM evaluator, VIRTUAL_imagenet256_labeled.npz)"

GROUP_LLAMAGEN = "CCA-LlamaGen-384"
GROUP_VAR = "CCA-VAR"


def _base(cards, mid: str) -> ModelCard:
    return next(c for c in cards if c.id == mid)


def _tokenizer_rfid(tokenizers, tid: str, res: int) -> Published | None:
    tok = next(t for t in tokenizers if t.id == tid)
    return next((p for r, p in tok.rfid if r == res), None)


def _cca(*, base: ModelCard, mid: str, label: str, repo: str, path: str, container, fid: float, table: str, row: str,
         proto: str, group: str, aliases: tuple[str, ...], tokenizers) -> ModelCard:
    url = f"https://huggingface.co/{repo[3:]}/resolve/main/{path}"
    return ModelCard(
        id=mid,
        family=base.family,
        family_label=label,
        size=f"{base.size} +CCA",
        params=base.params,
        resolution=base.resolution,
        tokenizer_id=base.tokenizer_id,
        codebook_size=base.codebook_size,
        tokens_per_image=base.tokens_per_image,
        files=(CheckpointFile("transformer", path, url, container, repo=repo),),
        fid=Published(fid, _README.format(table=table, row=row), proto, guidance="none", eval_resolution=256,
                      origin="readme"),
        rfid=_tokenizer_rfid(tokenizers, base.tokenizer_id, base.resolution),
        reference_bpp=None,
        aliases=aliases,
        group=group,
        in_published_table=False,
        notes=f"{base.id} fine-tuned with CCA ({PAPER}); same modules and keys as the base model.",
        base_model=base.id,
        arch=dict(base.arch),
    )


def _llamagen_card(size: str, fid: float) -> ModelCard:
    base = _base(_llamagen.CARDS, f"llamagen-{size.lower()}-384")
    fsdp = size in ("XXL", "3B")
    return _cca(base=base, mid=f"cca-llamagen-{size.lower()}-384", label="LlamaGen+CCA", repo=_LG_HF,
                path=f"{_LG_DIR}c2i_{size}_384_CCA_0005000.pt", container=None if fsdp else "model", fid=fid,
                table="LlamaGen+CCA", row=f"LlamaGen-{size}+CCA", proto=_LG_PROTO, group=GROUP_LLAMAGEN,
                aliases=(f"LlamaGen-{size}+CCA", f"CCA-LlamaGen-{size}", f"LlamaGen-{size}-384-CCA"),
                tokenizers=_llamagen.TOKENIZERS)


def _var_card(depth: int, fid: float) -> ModelCard:
    base = _base(_var.CARDS, f"var-d{depth}")
    return _cca(base=base, mid=f"cca-var-d{depth}", label="VAR+CCA", repo=_VAR_HF,
                path=f"{_VAR_DIR}VAR_d{depth}_CCA.pth", container=None, fid=fid, table="VAR+CCA",
                row=f"VAR-d{depth}+CCA", proto=_VAR_PROTO, group=GROUP_VAR,
                aliases=(f"VAR-d{depth}+CCA", f"CCA-VAR-d{depth}"), tokenizers=_var.TOKENIZERS)


CARDS = (
    _llamagen_card("B", 7.04),
    _llamagen_card("L", 3.43),
    _llamagen_card("XL", 3.10),
    _llamagen_card("XXL", 3.12),
    _llamagen_card("3B", 2.69),
    _var_card(16, 4.03),
    _var_card(20, 3.02),
    _var_card(24, 2.63),
    _var_card(30, 2.54),
)
