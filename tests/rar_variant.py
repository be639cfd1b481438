"""A RAR conformance set with other sizes everywhere (``num_res_blocks`` 1, 4 levels, a rounding MLP width...).

A MaskGIT-VQGAN with another ``num_res_blocks`` cannot be derived from the public set by an exact
rewrite, so this set gets new random weights and its expectations from :func:`reference`: a functional
MaskGIT-VQGAN + RAR written here from the spec (shared/specs/rar.md sections 2-3) with
``torch.nn.functional`` on the plain state dict, in float64, reading the block structure from the keys
(never from visbpp). Before it is used, it must reproduce the official code's ``expected.pt`` of the
public set. The key/shape formulas of the official classes are :func:`maskgit_shapes` and
:func:`rar_shapes` (``modeling/modules/maskgit_vqgan.py``, ``modeling/rar.py`` at the spec's commit).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F

SEED = 20251002


# --------------------------------------------------------------------------- the official key/shape formulas


def maskgit_shapes(hidden: int, mult: list, n_res: int, z: int, codes: int, chans: int = 3) -> dict:
    """Key -> shape of the official MaskGIT-VQGAN tokenizer: ``num_res_blocks`` ResnetBlocks per level *and* in
    each ``mid``; block 0 of a level maps the previous width (encoder: hidden * (1, *mult)[i]; decoder:
    hidden * mult[i + 1], last level hidden * mult[-1]) to hidden * mult[i]; 3x3 convs without bias, a 1x1
    ``nin_shortcut`` on width changes; ``upsample_conv`` on decoder levels 1..n-1."""
    out: dict = {}

    def res(prefix: str, cin: int, cout: int) -> None:
        out.update({f"{prefix}.norm1.weight": [cin], f"{prefix}.norm1.bias": [cin], f"{prefix}.conv1.weight": [cout, cin, 3, 3],
                    f"{prefix}.norm2.weight": [cout], f"{prefix}.norm2.bias": [cout],
                    f"{prefix}.conv2.weight": [cout, cout, 3, 3]})
        if cin != cout:
            out[f"{prefix}.nin_shortcut.weight"] = [cout, cout, 1, 1]

    n, top = len(mult), hidden * mult[-1]
    out["encoder.conv_in.weight"] = [hidden, chans, 3, 3]
    for i in range(n):
        for j in range(n_res):
            res(f"encoder.down.{i}.block.{j}", hidden * ((1,) + tuple(mult))[i] if j == 0 else hidden * mult[i], hidden * mult[i])
    for j in range(n_res):
        res(f"encoder.mid.{j}", top, top)
    out.update({"encoder.norm_out.weight": [top], "encoder.norm_out.bias": [top], "encoder.conv_out.weight": [z, top, 1, 1],
                "encoder.conv_out.bias": [z], "decoder.conv_in.weight": [top, z, 3, 3], "decoder.conv_in.bias": [top]})
    for j in range(n_res):
        res(f"decoder.mid.{j}", top, top)
    for i in range(n):
        cin = top if i == n - 1 else hidden * mult[i + 1]
        for j in range(n_res):
            res(f"decoder.up.{i}.block.{j}", cin if j == 0 else hidden * mult[i], hidden * mult[i])
        if i != 0:
            out.update({f"decoder.up.{i}.upsample_conv.weight": [hidden * mult[i]] * 2 + [3, 3],
                        f"decoder.up.{i}.upsample_conv.bias": [hidden * mult[i]]})
    b = hidden * mult[0]
    out.update({"decoder.norm_out.weight": [b], "decoder.norm_out.bias": [b], "decoder.conv_out.weight": [chans, b, 3, 3],
                "decoder.conv_out.bias": [chans], "quantize.embedding.weight": [codes, z]})
    return out


def rar_shapes(D: int, layers: int, heads: int, intermediate: int, L: int, classes: int, K: int) -> dict:
    """Key -> shape of the official ``RAR`` generator: MLP width ``int(D * mlp_ratio)`` with ``mlp_ratio =
    intermediate_size / D`` (timm ``Mlp``), position tables L + 1024 rows, timestep table L + 100 rows,
    K + 1 + C + 1 embedding rows, per-head QK LayerNorms."""
    H, hd = int(D * (intermediate / D)), D // heads
    out = {"cls_token": [1, 1, D], "embeddings.weight": [K + 1 + classes + 1, D], "pos_embed": [1, L + 1024, D],
           "target_aware_pos_embed": [1, L + 1024, D], "timesteps_embeddings": [1, L + 100, D]}
    for i in range(layers):
        p = f"blocks.{i}."
        out.update({p + "norm1.weight": [D], p + "norm1.bias": [D], p + "attn.qkv.weight": [3 * D, D],
                    p + "attn.qkv.bias": [3 * D], p + "attn.q_norm.weight": [hd], p + "attn.q_norm.bias": [hd],
                    p + "attn.k_norm.weight": [hd], p + "attn.k_norm.bias": [hd], p + "attn.proj.weight": [D, D],
                    p + "attn.proj.bias": [D], p + "norm2.weight": [D], p + "norm2.bias": [D], p + "mlp.fc1.weight": [H, D],
                    p + "mlp.fc1.bias": [H], p + "mlp.fc2.weight": [D, H], p + "mlp.fc2.bias": [D],
                    p + "adaLN_modulation.1.weight": [6 * D, D], p + "adaLN_modulation.1.bias": [6 * D]})
    out.update({"adaln_before_head.adaLN_modulation.1.weight": [2 * D, D],
                "adaln_before_head.adaLN_modulation.1.bias": [2 * D], "lm_head.weight": [K, D], "lm_head.bias": [K]})
    return out


# --------------------------------------------------------------------------- the functional reference (float64)


def _indices(sd: dict, prefix: str) -> list[int]:
    return sorted({int(k[len(prefix):].split(".")[0]) for k in sd if k.startswith(prefix)})


def _gn(x: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    return F.group_norm(x, 32, sd[p + ".weight"], sd[p + ".bias"], eps=1e-6)


def _res(x: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    h = F.conv2d(F.silu(_gn(x, sd, p + ".norm1")), sd[p + ".conv1.weight"], padding=1)
    h = F.conv2d(F.silu(_gn(h, sd, p + ".norm2")), sd[p + ".conv2.weight"], padding=1)
    return h + (F.conv2d(h, sd[p + ".nin_shortcut.weight"]) if p + ".nin_shortcut.weight" in sd else x)


def encode(sd: dict, x: torch.Tensor) -> torch.Tensor:
    """x (B, 3, S, S) in [0, 1] -> z: levels of ResnetBlocks with 2x2 average pools between them, mid blocks."""
    h = F.conv2d(x, sd["encoder.conv_in.weight"], padding=1)
    levels = _indices(sd, "encoder.down.")
    for i in levels:
        for j in _indices(sd, f"encoder.down.{i}.block."):
            h = _res(h, sd, f"encoder.down.{i}.block.{j}")
        if i != levels[-1]:
            h = F.avg_pool2d(h, 2)
    for j in _indices(sd, "encoder.mid."):
        h = _res(h, sd, f"encoder.mid.{j}")
    return F.conv2d(F.silu(_gn(h, sd, "encoder.norm_out")), sd["encoder.conv_out.weight"], sd["encoder.conv_out.bias"])


def quantize(sd: dict, z: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Raster codes of the plain squared-L2 nearest codebook rows, and the smallest gap to the second nearest
    relative to |z|^2 (a float32 implementation picks the same rows when it is well above 1e-6)."""
    B, C, H, W = z.shape
    zf = z.permute(0, 2, 3, 1).reshape(-1, C)
    d = (zf[:, None, :] - sd["quantize.embedding.weight"][None]).pow(2).sum(-1)
    two = d.topk(2, largest=False)
    gap = ((two.values[:, 1] - two.values[:, 0]) / zf.pow(2).sum(1)).min()
    return two.indices[:, 0].view(B, H * W), float(gap)


def decode(sd: dict, tokens: torch.Tensor) -> torch.Tensor:
    """Raster codes -> the decoder output (unclamped): mid blocks, levels from the deepest, nearest x2 + conv."""
    B, L = tokens.shape
    g = math.isqrt(L)
    h = sd["quantize.embedding.weight"][tokens].view(B, g, g, -1).permute(0, 3, 1, 2)
    h = F.conv2d(h, sd["decoder.conv_in.weight"], sd["decoder.conv_in.bias"], padding=1)
    for j in _indices(sd, "decoder.mid."):
        h = _res(h, sd, f"decoder.mid.{j}")
    for i in reversed(_indices(sd, "decoder.up.")):
        for j in _indices(sd, f"decoder.up.{i}.block."):
            h = _res(h, sd, f"decoder.up.{i}.block.{j}")
        if f"decoder.up.{i}.upsample_conv.weight" in sd:
            h = F.conv2d(F.interpolate(h, scale_factor=2.0, mode="nearest"), sd[f"decoder.up.{i}.upsample_conv.weight"],
                         sd[f"decoder.up.{i}.upsample_conv.bias"], padding=1)
    return F.conv2d(F.silu(_gn(h, sd, "decoder.norm_out")), sd["decoder.conv_out.weight"], sd["decoder.conv_out.bias"],
                    padding=1)


def generator_logits(sd: dict, tokens: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
    """Teacher-forced logits (B, L + 1, K) for raster tokens and condition ids (label + K + 1), spec section 3."""
    E, (B, L) = sd["embeddings.weight"], tokens.shape
    D = E.shape[1]
    hd = sd["blocks.0.attn.q_norm.weight"].shape[0]
    heads, T = D // hd, L + 2
    x = torch.cat([sd["cls_token"].expand(B, 1, D), E[condition][:, None], E[tokens]], 1) + sd["pos_embed"][:, :T]
    ta = torch.zeros(T, D, dtype=x.dtype)
    ta[1:L + 1] = sd["target_aware_pos_embed"][0, 2:L + 2]  # the next token's position; none for the last token
    x = x + ta
    c = E[condition][:, None] + sd["timesteps_embeddings"][:, :T]
    mask = torch.full((T, T), float("-inf"), dtype=x.dtype).triu(1)

    def ln(v, p, dim):
        return F.layer_norm(v, (dim,), sd.get(p + ".weight"), sd.get(p + ".bias"), eps=1e-6)

    for i in _indices(sd, "blocks."):
        p = f"blocks.{i}."
        sh_a, sc_a, g_a, sh_m, sc_m, g_m = F.linear(F.silu(c), sd[p + "adaLN_modulation.1.weight"],
                                                    sd[p + "adaLN_modulation.1.bias"]).chunk(6, -1)
        h = ln(x, p + "norm1", D) * (1 + sc_a) + sh_a
        q, k, v = F.linear(h, sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"]).view(B, T, 3, heads, hd).permute(2, 0, 3, 1, 4)
        q, k = ln(q, p + "attn.q_norm", hd), ln(k, p + "attn.k_norm", hd)
        a = ((q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask).softmax(-1) @ v
        x = x + g_a * F.linear(a.transpose(1, 2).reshape(B, T, D), sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
        h = ln(x, p + "norm2", D) * (1 + sc_m) + sh_m
        h = F.linear(F.gelu(F.linear(h, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"])), sd[p + "mlp.fc2.weight"],
                     sd[p + "mlp.fc2.bias"])
        x = x + g_m * h
    scale, shift = F.linear(F.silu(c[:, 1:]), sd["adaln_before_head.adaLN_modulation.1.weight"],
                            sd["adaln_before_head.adaLN_modulation.1.bias"]).chunk(2, -1)
    out = F.layer_norm(x[:, 1:], (D,), eps=1e-6) * (1 + scale) + shift
    return F.linear(out, sd["lm_head.weight"], sd["lm_head.bias"])


def reference(tok: dict, gen: dict, x: torch.Tensor, labels: torch.Tensor) -> dict:
    """Everything ``expected.pt`` holds, from the state dicts alone (float64; stored as the official set's dtypes)."""
    tok = {k: v.double() for k, v in tok.items()}
    gen = {k: v.double() for k, v in gen.items()}
    z = encode(tok, x.double())
    tokens, gap = quantize(tok, z)
    K = tok["quantize.embedding.weight"].shape[0]
    condition = labels.long() + K + 1
    logits = generator_logits(gen, tokens, condition)
    L = tokens.shape[1]
    nll = -logits[:, :L].log_softmax(-1).gather(-1, tokens[..., None])[..., 0]
    recon = decode(tok, tokens)
    return {"x": x, "z": z.float(), "tokens": tokens, "condition_ids": condition, "token_nll": nll.float(),
            "nll_bits": nll.sum(-1) / math.log(2), "recon": recon.clamp(0, 1).float(), "recon_raw": recon.float(),
            "logits_first": logits[0, :L].float(), "logits_extra_last": logits[:, L].float(), "argmin_gap": gap}


def check_reference(folder: Path) -> None:
    """The reference reproduces the official code's ``expected.pt`` of a public RAR (MaskGIT-VQGAN) set."""
    e = torch.load(folder / "expected.pt", weights_only=True)
    tok = torch.load(folder / "tokenizer.pt", weights_only=True)
    gen = torch.load(folder / "transformer.pt", weights_only=True)
    labels = e["condition_ids"] - tok["quantize.embedding.weight"].shape[0] - 1
    r = reference(tok, gen, e["x"], labels)
    assert torch.equal(r["tokens"], e["tokens"]) and torch.equal(r["condition_ids"], e["condition_ids"])
    for key, tol in (("z", 1e-4), ("recon_raw", 1e-4), ("recon", 1e-4), ("logits_first", 1e-4), ("token_nll", 1e-5),
                     ("nll_bits", 4e-5), ("logits_extra_last", 1e-4)):
        torch.testing.assert_close(r[key].to(e[key].dtype), e[key], atol=tol, rtol=0, msg=f"reference {key} of {folder}")


# --------------------------------------------------------------------------- the set


def _random(shapes: dict, g: torch.Generator) -> dict:
    """Weights that make every part matter: norms 1+0.1N / 0.1N, convs and linears N(0, 1/fan_in) (the head x2),
    biases 0.1N, embeddings N(0, 1), position and timestep tables 0.5N."""
    out = {}
    for k, shape in shapes.items():
        n = torch.randn(shape, generator=g)
        module = k.rsplit(".", 1)[0].rsplit(".", 1)[-1] if "." in k else ""
        if "norm" in module:
            out[k] = 1 + 0.1 * n if k.endswith("weight") else 0.1 * n
        elif k in ("embeddings.weight", "cls_token"):
            out[k] = n
        elif k.endswith(("pos_embed", "timesteps_embeddings")):
            out[k] = 0.5 * n
        elif k.endswith("bias"):
            out[k] = 0.1 * n
        else:
            out[k] = n / math.sqrt(math.prod(shape[1:])) * (2 if k == "lm_head.weight" else 1)
    return out


def _plant(tok: dict, z: torch.Tensor, g: torch.Generator) -> None:
    """Codebook rows: most at encoder outputs of the set's images (+ noise), the rest around their mean."""
    e = tok["quantize.embedding.weight"]
    K, C = e.shape
    zf = z.permute(0, 2, 3, 1).reshape(-1, C).float()
    std = zf.std(0)
    rows = torch.randperm(K, generator=g)[: K * 2 // 3]
    picks = torch.randperm(zf.shape[0], generator=g)[: len(rows)]
    e.copy_(zf.mean(0) + std * torch.randn(K, C, generator=g))
    e[rows] = zf[picks] + 0.05 * std * torch.randn(len(rows), C, generator=g)


def build_rar(src: Path, dst: Path) -> None:
    """``dst``: the public set's images and labels, every size of the tokenizer and the generator changed."""
    check_reference(src)
    config = json.loads((src / "config.json").read_text())
    e_pub = torch.load(src / "expected.pt", weights_only=True)
    pub_labels = e_pub["condition_ids"] - config["tokenizer_quantizer"]["num_embeddings"] - 1
    tk = dict(hidden_channels=32, channel_mult=[1, 2, 2, 2], num_resolutions=4, num_res_blocks=1, z_channels=12)
    gn = dict(hidden_size=44, num_hidden_layers=3, num_attention_heads=4, intermediate_size=98, condition_num_classes=12)
    K, S = 96, config["image_size"]
    grid = S // 2 ** (len(tk["channel_mult"]) - 1)
    L = grid * grid
    config["tokenizer"].update(tk, resolution=S)
    config["tokenizer_quantizer"].update(num_embeddings=K, embedding_dim=tk["z_channels"])
    config["transformer"]["model.generator"].update(gn, image_seq_len=L)
    config["transformer"]["model.vq_model.codebook_size"] = K
    mlp = int(gn["hidden_size"] * (gn["intermediate_size"] / gn["hidden_size"]))  # 97: the upstream width rounds down
    config.update(num_classes=gn["condition_num_classes"], downsample=S // grid, token_grid=[grid, grid], seq_len=L,
                  set="derived (visbpp tests)", seed=SEED)
    config["derived"] = {"head_dim": 11, "mlp_ratio": gn["intermediate_size"] / gn["hidden_size"], "mlp_hidden": mlp,
                         "embedding_rows": K + 1 + gn["condition_num_classes"] + 1, "mask_token_id": K,
                         "condition_ids": (pub_labels + K + 1).tolist(), "none_condition_id": K + gn["condition_num_classes"] + 1,
                         "pos_embed_rows": L + 1024, "target_aware_pos_embed_rows": L + 1024,
                         "timesteps_embeddings_rows": L + 100, "logits_shape_per_image": [L + 1, K]}
    for key in ("fixture_stats", "weights"):
        config.pop(key, None)
    config["notes"] = ("DERIVED SET: MaskGIT-VQGAN with num_res_blocks 1 and 4 levels (downsample 8, 8x8 tokens), z 12, "
                       "96 codes; RAR generator hidden 44, 3 layers, 4 heads, intermediate_size 98 (MLP width 97), 12 "
                       "classes. Random weights; expected.pt from the functional reference of tests/rar_variant.py, "
                       "checked first against the official expected.pt of the public set.")
    g = torch.Generator().manual_seed(SEED)
    tok = _random(maskgit_shapes(tk["hidden_channels"], tk["channel_mult"], tk["num_res_blocks"], tk["z_channels"], K), g)
    gen = _random(rar_shapes(gn["hidden_size"], gn["num_hidden_layers"], gn["num_attention_heads"], gn["intermediate_size"],
                             L, gn["condition_num_classes"], K), g)
    x = e_pub["x"]
    z = encode({k: v.double() for k, v in tok.items()}, x.double())
    for _ in range(20):  # plant the codebook until every argmin has a clear margin
        _plant(tok, z, g)
        if quantize({"quantize.embedding.weight": tok["quantize.embedding.weight"].double()}, z)[1] > 1e-3:
            break
    else:
        raise AssertionError("could not plant a codebook with clear argmin margins")
    expected = reference(tok, gen, x, pub_labels)
    assert expected.pop("argmin_gap") > 1e-3
    assert len(expected["tokens"].unique()) > L // 2, "too few distinct codes"
    expected.update(preprocess_val=e_pub["preprocess_val"], preprocess_adm=e_pub["preprocess_adm"])
    dst.mkdir(parents=True)
    for f in ("images.npy", "labels.npy", "preprocess_raw.npy"):
        os.symlink(src / f, dst / f)
    torch.save(tok, dst / "tokenizer.pt")
    torch.save(gen, dst / "transformer.pt")
    torch.save(expected, dst / "expected.pt")
    (dst / "config.json").write_text(json.dumps(config, indent=1))
