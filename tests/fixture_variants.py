"""Further conformance sets of the shared layout, derived from the public ones: ``<family>-<suffix>``.

A derived set is only useful if its expectations do not come from visbpp. Three derivations keep
the official ``expected.pt`` valid, exactly, in the official architectures:

- another container of the same tensors, one the official loader reads (``ema``, ``module``, a bare
  dict, trainer/Lightning extras, decoy entries the official loader does not read);
- extra class rows: labels below the old class count never read them (rows are inserted before the
  null/CFG row where a model has one, so the null class keeps its meaning);
- extra identity blocks and wider MLPs: a residual block whose output projections are zero adds exactly
  0 (transformer layers; ResnetBlocks and attention blocks of conv tokenizers, i.e. ``num_res_blocks`` + 1),
  a hidden unit whose output column is zero adds exactly 0.

The new sizes are written here from the upstream formulas (e.g. LlamaGen's SwiGLU width, VAR's
``round(C * mlp_ratio)``), not taken from visbpp, and the config says them in upstream names: the
strict loader then checks visbpp's formulas against them. RAR's tokenizer with another
``num_res_blocks`` cannot be derived like this: ``rar_variant.py`` builds it with expectations from an
independent functional reference. ``BUILDERS`` maps a public set's name to its builder
``(src, dst) -> None``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
from pathlib import Path
from typing import Callable

import torch

from rar_variant import build_rar

GEN_SEED = 20251001


def load_plain(path: Path) -> dict:
    """A trusted fixture file (``argparse.Namespace`` allowed, nothing else executed)."""
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(path, map_location="cpu", weights_only=True)


def state_dict(path: Path, *keys: str | None) -> dict:
    """The state dict under the first of ``keys`` the file has (``None``: the file is one), as the official
    loaders look for it (the spec's order), so that any set of the layout can be the source."""
    obj = load_plain(path)
    for key in keys:
        if key is None and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
        if key is not None and isinstance(obj.get(key), dict):
            return dict(obj[key])
    raise AssertionError(f"{path}: none of the containers {keys}")


def start_set(src: Path, dst: Path, *, skip: tuple[str, ...] = ()) -> dict:
    """``dst`` with links to the files of ``src`` (not ``keys/`` and ``skip``); returns its config to edit."""
    dst.mkdir(parents=True)
    for f in sorted(src.iterdir()):
        if f.is_file() and f.name not in skip + ("config.json", "tokenizer.pt", "transformer.pt"):
            os.symlink(f, dst / f.name)
    return json.loads((src / "config.json").read_text())


def finish_set(dst: Path, config: dict, note: str) -> None:
    config["notes"] = f"{config.get('notes', '')} DERIVED SET: {note}".strip()
    (dst / "config.json").write_text(json.dumps(config, indent=1))


def noisy(sd: dict, scale: float = 0.05) -> dict:
    """A decoy copy (other weights) of a state dict, seeded."""
    g = torch.Generator().manual_seed(GEN_SEED)
    return {k: v + scale * torch.randn(v.shape, generator=g) if v.is_floating_point() else v.clone() for k, v in sd.items()}


def _rand_like(t: torch.Tensor, shape: tuple, g: torch.Generator) -> torch.Tensor:
    std = float(t.float().std()) if t.numel() > 1 else 1.0
    return (torch.randn(shape, generator=g) * (std or 1.0)).to(t.dtype)


def insert_rows(sd: dict, key: str, at: int, n: int) -> None:
    """``n`` new (random) rows at index ``at`` of ``sd[key]`` (dim 0)."""
    g = torch.Generator().manual_seed(GEN_SEED + n)
    t = sd[key]
    sd[key] = torch.cat([t[:at], _rand_like(t, (n, *t.shape[1:]), g), t[at:]])


def identity_block(sd: dict, src: str, dst: str, zero: tuple[str, ...]) -> None:
    """Copy block ``src`` (a key prefix) as block ``dst`` with its output projections ``zero`` (suffixes) set to 0."""
    keys = [k for k in sd if k.startswith(src)]
    assert keys, src
    for k in keys:
        name = k[len(src):]
        sd[dst + name] = torch.zeros_like(sd[k]) if name in zero else sd[k].clone()
    assert all(dst + z in sd for z in zero), (dst, zero)


def widen(sd: dict, prefix: str, inputs: tuple[str, ...], output: str, hidden: int) -> None:
    """Hidden units ``old..hidden`` of an MLP: random rows in the input layers (weights and biases named in
    ``inputs``), zero columns in the output layer ``output``: their contribution is exactly 0."""
    g = torch.Generator().manual_seed(GEN_SEED + hidden)
    for name in inputs:
        t = sd[prefix + name]
        sd[prefix + name] = torch.cat([t, _rand_like(t, (hidden - t.shape[0], *t.shape[1:]), g)])
    w = sd[prefix + output]
    sd[prefix + output] = torch.cat([w, torch.zeros(w.shape[0], hidden - w.shape[1], dtype=w.dtype)], 1)


_CONV_LISTS = re.compile(r"^(.*(?:(?:encoder\.down|decoder\.up|encoder\.conv_blocks|decoder\.conv_blocks)\.\d+\."
                         r"(?:block|res|attn)|(?:encoder|decoder)\.mid_block)\.)(\d+)\.")
_CONV_ZERO = ("conv2.weight", "conv2.bias", "proj_out.weight", "proj_out.bias")


def deepen(sd: dict) -> None:
    """``num_res_blocks`` + 1 in a taming-lineage conv tokenizer: one identity block more at the end of every
    level's ResnetBlock list (conv2 = 0: it returns its input) and attention list (proj_out = 0: likewise), and of
    the middle list where upstream sizes it by ``num_res_blocks`` (Open-MAGVIT2's ``mid_block``)."""
    last: dict = {}
    for k in sd:
        m = _CONV_LISTS.match(k)
        if m:
            last[m.group(1)] = max(last.get(m.group(1), -1), int(m.group(2)))
    assert last
    for prefix, i in last.items():
        src = f"{prefix}{i}."
        assert not any(k.startswith(src + "nin_shortcut") for k in sd), src  # a width change is no identity
        zero = tuple(z for z in _CONV_ZERO if src + z in sd)
        assert zero, src
        identity_block(sd, src, f"{prefix}{i + 1}.", zero)


def deepen_with_ema(sd: dict) -> None:
    """:func:`deepen` on a SEED-Voken Lightning state dict, its ``model_ema.<key without dots>`` copies alike."""
    pre = next((k.split("model_ema.")[0] for k in sd if "model_ema." in k), None)
    raw = {k: v for k, v in sd.items() if "model_ema." not in k}
    new = dict(raw)
    deepen(new)
    sd.update({k: new[k] for k in set(new) - set(raw)})
    if pre is None:
        return

    def ema_name(k: str) -> str:
        return f"{pre}model_ema.{k[len(pre):].replace('.', '')}"

    ema = {k: sd[ema_name(k)] for k in raw if k.startswith(pre) and ema_name(k) in sd}
    new = dict(ema)
    deepen(new)
    sd.update({ema_name(k): new[k] for k in set(new) - set(ema)})


def swiglu_width(dim: int, multiple_of: int, ffn_dim_multiplier: float | None) -> int:
    """LlamaGen ``FeedForward`` (autoregressive/models/gpt.py): int(2 * 4 dim / 3), times the multiplier (int),
    rounded up to ``multiple_of``; the GPTs of GigaTok, Hita, Open-MAGVIT2 and IBQ are built the same way."""
    h = int(2 * (4 * dim) / 3)
    if ffn_dim_multiplier is not None:
        h = int(ffn_dim_multiplier * h)
    return multiple_of * math.ceil(h / multiple_of)


def lightning(sd: dict) -> dict:
    """A Lightning checkpoint around ``sd`` with the trainer's other entries (none read by the official loaders)."""
    return {"state_dict": sd, "epoch": 11, "global_step": 12345, "pytorch-lightning_version": "1.0.8",
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 4.5e-6}]}], "lr_schedulers": [], "callbacks": {}}


# --------------------------------------------------------------------------- LlamaGen-lineage GPTs

_LLAMA_ZERO = ("attention.wo.weight", "feed_forward.w2.weight")


def _llama_gpt(sd: dict, t: dict, *, prefix: str = "", layers_key: str = "n_layer", blocks: str = "layers",
               classes_key: str = "num_classes", class_table: str = "cls_embedding.embedding_table.weight",
               dim_key: str = "dim", multiple_of: int = 64, multiplier: float | None = 1.7) -> dict:
    """One identity layer more, a wider SwiGLU (the upstream formula), 3 class rows more before the null row."""
    n, dim = t[layers_key], t[dim_key]
    identity_block(sd, f"{prefix}{blocks}.{n - 1}.", f"{prefix}{blocks}.{n}.", _LLAMA_ZERO)
    old = swiglu_width(dim, t["multiple_of"], t.get("ffn_dim_multiplier"))
    t[layers_key], t["multiple_of"] = n + 1, multiple_of
    if "ffn_dim_multiplier" in t:
        t["ffn_dim_multiplier"] = multiplier
    new = swiglu_width(dim, multiple_of, t.get("ffn_dim_multiplier"))
    assert new > old, (old, new)
    for i in range(n + 1):
        widen(sd, f"{prefix}{blocks}.{i}.feed_forward.", ("w1.weight", "w3.weight"), "w2.weight", new)
    c = t[classes_key]
    insert_rows(sd, prefix + class_table, c, 3)  # rows 0..C-1 classes, row C the null class (label dropout)
    t[classes_key] = c + 3
    return {"ffn": new, "classes": c + 3, "class_rows": c + 4, "null": c + 3}


def build_llamagen(src: Path, dst: Path) -> None:
    cfg = start_set(src, dst)
    tok = state_dict(src / "tokenizer.pt", "model")
    gpt = state_dict(src / "transformer.pt", "model", "module", "state_dict", None)
    d = _llama_gpt(gpt, cfg["transformer"])
    cfg["num_classes"] = d["classes"]
    cfg["derived"].update(ffn_hidden_dim=d["ffn"], class_embedding_rows=d["class_rows"], null_class_index=d["null"])
    deepen(tok)
    cfg["tokenizer_encoder_decoder_args"]["num_res_blocks"] += 1
    # the tokenizer trainer's file (inference reads "model" only); the GPT as an FSDP run saves it: bare
    torch.save({"model": tok, "ema": noisy(tok), "optimizer": {"state": {}}, "steps": 7,
                "args": argparse.Namespace(vq_model="VQ-16", ema=True)}, dst / "tokenizer.pt")
    torch.save(gpt, dst / "transformer.pt")
    cfg["tokenizer_container"], cfg["transformer_container"] = "model", None
    finish_set(dst, cfg, "tokenizer num_res_blocks 3 (identity blocks), in a trainer file with a decoy 'ema'; GPT bare "
                         "(FSDP) with 3 layers (an identity one), SwiGLU width from multiple_of 64 and "
                         "ffn_dim_multiplier 1.7, 13 classes")


def build_gigatok(src: Path, dst: Path) -> None:
    cfg = start_set(src, dst)
    tok = state_dict(src / "tokenizer.pt", "ema", "model", "state_dict", None)
    gpt = state_dict(src / "transformer.pt", "model", "module", "state_dict", None)
    d = _llama_gpt(gpt, cfg["transformer"])
    cfg["num_classes"] = d["classes"]
    cfg["derived"].update(gpt_ffn_hidden_dim=d["ffn"], class_embedding_rows=d["class_rows"], null_class_index=d["null"])
    torch.save({"ema": tok}, dst / "tokenizer.pt")  # the official tokenizer loaders take ema, then model, then state_dict
    torch.save({"module": gpt, "steps": 3, "args": argparse.Namespace(gpt_model="GPT-B")}, dst / "transformer.pt")
    cfg["tokenizer_container"], cfg["transformer_container"] = "ema", "module"
    finish_set(dst, cfg, "tokenizer under 'ema'; GPT under 'module' with 3 layers (an identity one), a wider SwiGLU, "
                         "13 classes")


def build_hita(src: Path, dst: Path) -> None:
    cfg = start_set(src, dst, skip=("probe_image.npy",))
    tok = state_dict(src / "tokenizer.pt", "ema")
    gpt = state_dict(src / "transformer.pt", "ema", "model", "module", "state_dict", None)
    d = _llama_gpt(gpt, cfg["transformer"], multiple_of=256, multiplier=2.2)
    cfg["num_classes"] = d["classes"]
    cfg["derived"].update(gpt_ffn_hidden=d["ffn"], class_embedding_rows=d["class_rows"], null_class_index=d["null"])
    torch.save({"model": noisy(tok), "ema": tok, "steps": 9, "args": argparse.Namespace(ema=True)}, dst / "tokenizer.pt")
    torch.save({"ema": gpt}, dst / "transformer.pt")  # no decoy entry
    cfg["tokenizer_container"], cfg["transformer_container"] = "ema", "ema"
    finish_set(dst, cfg, "no probe_image.npy, GPT file without a decoy 'model'; tokenizer trainer file with raw weights "
                         "beside 'ema'; GPT with 3 layers (an identity one), a wider SwiGLU, 13 classes")


# --------------------------------------------------------------------------- the others


def build_var(src: Path, dst: Path) -> None:
    cfg = start_set(src, dst)
    tok, ar = state_dict(src / "tokenizer.pt", None), state_dict(src / "transformer.pt", None)
    t = cfg["transformer"]
    n, C = t["depth"], t["embed_dim"]
    identity_block(ar, f"blocks.{n - 1}.", f"blocks.{n}.", ("attn.proj.weight", "attn.proj.bias", "ffn.fc2.weight",
                                                             "ffn.fc2.bias"))
    hidden = round(C * 4.5)  # upstream AdaLNSelfAttn: FFN(hidden_features=round(embed_dim * mlp_ratio))
    assert hidden > round(C * t["mlp_ratio"])
    for i in range(n + 1):
        widen(ar, f"blocks.{i}.ffn.", ("fc1.weight", "fc1.bias"), "fc2.weight", hidden)
    insert_rows(ar, "class_emb.weight", t["num_classes"], 3)  # class_emb has num_classes + 1 rows, the last the null class
    t.update(depth=n + 1, mlp_ratio=4.5, num_classes=t["num_classes"] + 3)
    cfg["num_classes"] = t["num_classes"]
    cfg["derived"]["null_class_index"] = t["num_classes"]
    # upstream VQVAE.load_state_dict keeps its own usage buffer when the stored one has another first dimension
    tok["quantize.ema_vocab_hit_SV"] = torch.rand(3, tok["quantize.ema_vocab_hit_SV"].shape[1])
    torch.save(tok, dst / "tokenizer.pt")
    torch.save(ar, dst / "transformer.pt")
    finish_set(dst, cfg, "depth 3 (an identity block), mlp_ratio 4.5, 13 classes; a usage buffer of another length")


def build_taming(src: Path, dst: Path) -> None:
    cfg = start_set(src, dst)
    tok, cin = state_dict(src / "tokenizer.pt", "state_dict"), state_dict(src / "transformer.pt", "state_dict")
    t = cfg["transformer"]
    n = t["n_layer"]
    identity_block(cin, f"transformer.blocks.{n - 1}.", f"transformer.blocks.{n}.",
                   ("attn.proj.weight", "attn.proj.bias", "mlp.2.weight", "mlp.2.bias"))
    t["n_layer"] = n + 1
    deepen(tok)
    deepen(cin)  # its first_stage_model.* part is the tokenizer
    cfg["tokenizer"]["ddconfig"]["num_res_blocks"] += 1
    # the class id is the first input token (Labelator): more classes change no tensor while below vocab_size
    classes = cfg["num_classes"] + 3
    assert classes <= t["vocab_size"]
    cfg["num_classes"] = cfg["net2net"]["cond_stage_config"]["params"]["n_classes"] = classes
    torch.save(lightning(tok), dst / "tokenizer.pt")
    torch.save(lightning(cin), dst / "transformer.pt")
    finish_set(dst, cfg, "VQGAN num_res_blocks 2 (identity blocks), 3 GPT layers (an identity one), 13 classes, "
                         "Lightning files with the trainer's entries")


def _seedvoken(src: Path, dst: Path, blocks: tuple[str, ...], layers: tuple[str, ...], dim_key: str, note: str) -> None:
    cfg = start_set(src, dst)
    tok, ar = state_dict(src / "tokenizer.pt", "state_dict"), state_dict(src / "transformer.pt", "state_dict")
    t = cfg["transformer"]
    old = swiglu_width(t[dim_key], t["multiple_of"], None)
    new = swiglu_width(t[dim_key], 48, None)
    assert new > old
    for b, key in zip(blocks, layers):
        n = t[key]
        identity_block(ar, f"transformer.{b}.{n - 1}.", f"transformer.{b}.{n}.", _LLAMA_ZERO)
        t[key] = n + 1
        for i in range(n + 1):
            widen(ar, f"transformer.{b}.{i}.feed_forward.", ("w1.weight", "w3.weight"), "w2.weight", new)
    t["multiple_of"] = 48
    c = t["class_num"]
    insert_rows(ar, "transformer.class_emb.embedding_table.weight", c, 3)  # null row last
    t["class_num"] = cfg["num_classes"] = cfg["net2net"]["cond_stage_config"]["params"]["n_classes"] = c + 3
    cfg["derived"].update(ffn_hidden_dim=new, class_embedding_rows=c + 4, null_class_index=c + 3)
    deepen_with_ema(tok)
    deepen_with_ema(ar)  # its first_stage_model.* part is the tokenizer
    cfg["tokenizer"]["ddconfig"]["num_res_blocks"] += 1
    torch.save(lightning(tok), dst / "tokenizer.pt")
    torch.save(lightning(ar), dst / "transformer.pt")
    finish_set(dst, cfg, note)


def build_openmagvit2(src: Path, dst: Path) -> None:
    _seedvoken(src, dst, ("spatial_blocks", "factorized_blocks"), ("spatial_n_layer", "factorized_n_layer"), "dim",
               "tokenizer num_res_blocks 2 (identity blocks, mid_block too); one identity block more in both GPT stacks, "
               "SwiGLU width from multiple_of 48, 13 classes, Lightning extras")


def build_ibq(src: Path, dst: Path) -> None:
    _seedvoken(src, dst, ("blocks",), ("n_layer",), "n_embd",
               "tokenizer num_res_blocks 2 (identity blocks), GPT with 3 layers (an identity one), SwiGLU width from "
               "multiple_of 48, 13 classes, Lightning extras")


def build_rqtransformer(src: Path, dst: Path) -> None:
    cfg = start_set(src, dst)
    tok, ar = state_dict(src / "tokenizer.pt", "state_dict"), state_dict(src / "transformer.pt", "state_dict")
    t = cfg["transformer"]
    for part in ("body", "head"):
        n = t[part]["n_layer"]
        identity_block(ar, f"{part}_transformer.blocks.{n - 1}.", f"{part}_transformer.blocks.{n}.",
                       ("attn.proj.weight", "attn.proj.bias", "mlp.2.weight", "mlp.2.bias"))
        t[part]["n_layer"] = n + 1
    c = t["vocab_size_cond"]
    insert_rows(ar, "cond_emb.weight", c, 3)  # one row per class, no null row
    t["vocab_size_cond"] = cfg["num_classes"] = c + 3
    deepen(tok)
    cfg["tokenizer"]["ddconfig"]["num_res_blocks"] += 1
    for sd, name in ((tok, "tokenizer.pt"), (ar, "transformer.pt")):  # the trainers' files; state_dict_ema not read
        torch.save({"epoch": 4, "state_dict": sd, "optimizer": {"state": {}, "param_groups": []},
                    "scheduler": {"last_epoch": 4}, "state_dict_ema": noisy(sd)}, dst / name)
    finish_set(dst, cfg, "RQ-VAE num_res_blocks 2 (identity blocks), body and head with an identity block more, 13 "
                         "classes, trainer files with a state_dict_ema")


def build_rar_robusttok(src: Path, dst: Path) -> None:
    cfg = start_set(src, dst)
    tok = load_plain(src / "tokenizer.pt")
    gen = state_dict(src / "transformer.pt", None)
    g = cfg["transformer"]["model.generator"]
    K, C, n, D = cfg["transformer"]["model.vq_model.codebook_size"], g["condition_num_classes"], g["num_hidden_layers"], \
        g["hidden_size"]
    identity_block(gen, f"blocks.{n - 1}.", f"blocks.{n}.", ("attn.proj.weight", "attn.proj.bias", "mlp.fc2.weight",
                                                             "mlp.fc2.bias"))
    hidden = 320  # timm Mlp width int(D * (intermediate_size / D)) = 320 at D = 64
    assert int(D * (hidden / D)) == hidden > g["intermediate_size"]
    for i in range(n + 1):
        widen(gen, f"blocks.{i}.mlp.", ("fc1.weight", "fc1.bias"), "fc2.weight", hidden)
    insert_rows(gen, "embeddings.weight", K + 1 + C, 3)  # codes, mask, classes, then the null class
    g.update(num_hidden_layers=n + 1, intermediate_size=hidden, condition_num_classes=C + 3)
    cfg["num_classes"] = C + 3
    cfg["derived"].update(embedding_rows=K + 1 + C + 3 + 1, none_condition_id=K + C + 3 + 1)
    tok = {**tok, "optimizer": {"state": {}}, "discriminator": noisy(tok["model"]), "optimizer_disc": {}}
    torch.save(tok, dst / "tokenizer.pt")
    torch.save(gen, dst / "transformer.pt")
    finish_set(dst, cfg, "generator with 3 layers (an identity one), MLP width 320, 13 classes; tokenizer file with "
                         "the trainer's optimizer and discriminator entries")


BUILDERS: dict[str, Callable[[Path, Path], None]] = {
    "llamagen": build_llamagen, "var": build_var, "rqtransformer": build_rqtransformer, "taming": build_taming,
    "openmagvit2": build_openmagvit2, "ibq": build_ibq, "rar": build_rar, "rar-robusttok": build_rar_robusttok,
    "gigatok": build_gigatok, "hita": build_hita,
}


def copy_public(src_root: Path, dst_root: Path) -> None:
    """Links to every public set of ``src_root`` in ``dst_root``."""
    dst_root.mkdir(parents=True, exist_ok=True)
    for d in sorted(src_root.iterdir()):
        if d.is_dir():
            os.symlink(d, dst_root / d.name)

