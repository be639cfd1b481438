"""visbpp's scoring forward vs an "official" forward written from the specs, on identical weights.

GPT-B (LlamaGen ``llamagen-b-256`` shape: 12 layers, dim 768, 256 tokens, V 16384) and VAR-d16
(depth 16, C 1024, 680 tokens, V 4096) with random weights. The official forward follows
``specs/llamagen.md`` section 3/5 and ``specs/var.md`` section 3/5 op for op (written-out
RMSNorm, RoPE on strided (a, b) pairs with a stack, causal SDPA; VAR with the additive float
mask, and under bf16 the residual stream cast to bf16 as the official model does; every linear
``F.linear``), then the full float32 logits and ``cross_entropy`` per token. visbpp's forward is ``token_nll`` (VAR: its
``hidden`` + chunked NLL, the teacher-forcing input given, as the tokenizer is not timed).

Per dtype and model: one warm-up each, then ``--rounds`` alternating rounds (official, visbpp,
then visbpp, official, ...); the ratio of process CPU time official / visbpp per round, median
reported (> 1: visbpp faster). NLL difference = max |nll_visbpp - nll_official| in nats.
``--memory`` also measures the peak RSS growth of one GPT-B forward at batch 8 bf16 (fresh
process per variant).

usage: python benchmarks/forward_vs_official.py [--rounds 5] [--gpt-batch 4] [--var-batch 1]
       [--threads 2] [--dtypes fp32,bf16] [--models gpt-b,var-d16] [--memory] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

# --------------------------------------------------------------------------- official GPT (spec)


def official_rope_table(grid: int, head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """(1 + grid^2, head_dim/2, 2) (cos, sin); class row all zero; row angles then column angles."""
    m = head_dim // 4
    w = 1.0 / (base ** (torch.arange(0, m, dtype=torch.float32) * 2 / (head_dim // 2)))
    rows = torch.arange(grid, dtype=torch.float32).repeat_interleave(grid)
    cols = torch.arange(grid, dtype=torch.float32).repeat(grid)
    ang = torch.cat([rows[:, None] * w, cols[:, None] * w], dim=1)  # (grid^2, head_dim/2)
    table = torch.stack([ang.cos(), ang.sin()], dim=-1)
    return torch.cat([torch.zeros(1, head_dim // 2, 2), table])


def official_rope(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    xs = x.float().reshape(*x.shape[:-1], -1, 2)  # (B, S, H, D/2, 2)
    t = table.view(1, xs.size(1), 1, xs.size(3), 2)
    out = torch.stack([xs[..., 0] * t[..., 0] - xs[..., 1] * t[..., 1],
                       xs[..., 1] * t[..., 0] + xs[..., 0] * t[..., 1]], dim=-1)
    return out.flatten(3).type_as(x)


def official_rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).type_as(x) * weight


def official_gpt_nll(m, tokens: torch.Tensor, labels: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    c = m.cfg
    B, L = tokens.shape
    H, D = c.n_head, c.head_dim
    x = torch.cat([m.cls_embedding.embedding_table(labels)[:, None], m.tok_embeddings(tokens[:, :-1])], dim=1)
    for layer in m.layers:
        a = layer.attention
        h = official_rmsnorm(x, layer.attention_norm.weight, c.norm_eps)
        q, k, v = F.linear(h, a.wqkv.weight).split([c.dim, c.dim, c.dim], dim=-1)
        q = official_rope(q.view(B, L, H, D), table[:L])
        k = official_rope(k.view(B, L, H, D), table[:L])
        v = v.view(B, L, H, D)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        x = x + F.linear(y.transpose(1, 2).contiguous().view(B, L, c.dim), a.wo.weight)
        f = layer.feed_forward
        h = official_rmsnorm(x, layer.ffn_norm.weight, c.norm_eps)
        x = x + F.linear(F.silu(F.linear(h, f.w1.weight)) * F.linear(h, f.w3.weight), f.w2.weight)
    logits = F.linear(official_rmsnorm(x, m.norm.weight, c.norm_eps), m.output.weight).float()  # (B, L, V)
    return F.cross_entropy(logits.view(-1, logits.size(-1)), tokens.reshape(-1), reduction="none").view(B, L)


# --------------------------------------------------------------------------- official VAR (spec)


def lin(module, x: torch.Tensor) -> torch.Tensor:
    """The official model's ``nn.Linear`` call: ``F.linear`` with the module's weight and bias."""
    return F.linear(x, module.weight, module.bias)


def official_var_nll(m, x_in: torch.Tensor, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    C, B = m.C, tokens.shape[0]
    with torch.autocast("cpu", enabled=False):
        cond = m.class_emb(labels)
        sos = cond.unsqueeze(1).expand(B, m.first_l, -1) + m.pos_start.expand(B, m.first_l, -1)
        x = torch.cat((sos, lin(m.word_embed, x_in.float())), dim=1)
        x = x + m.lvl_embed(m.lvl_1L[0]).unsqueeze(0) + m.pos_1LC
    bias = m.attn_bias_for_masking
    # the official model finds the autocast dtype with a tiny matmul and runs its blocks in it
    main = torch.matmul(torch.ones(2, 2), torch.ones(2, 2)).dtype
    x, cond_b, bias = x.to(main), cond.to(main), bias.to(main)
    ln = lambda t: F.layer_norm(t, (C,), eps=m.config.norm_eps)  # noqa: E731
    for blk in m.blocks:
        g1, g2, s1, s2, h1, h2 = lin(blk.ada_lin[1], F.silu(cond_b)).view(-1, 1, 6, C).unbind(2)
        a = blk.attn
        h = ln(x).mul(s1.add(1)).add_(h1)
        qkv = F.linear(h, a.mat_qkv.weight, torch.cat((a.q_bias, a.zero_k_bias, a.v_bias)))
        q, k, v = qkv.view(B, -1, 3, a.num_heads, a.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        main_type = qkv.dtype
        q = F.normalize(q, dim=-1).mul(a.scale_mul_1H11.clamp_max(math.log(100)).exp())
        k = F.normalize(k, dim=-1)
        q, k = q.to(main_type), k.to(main_type)
        o = F.scaled_dot_product_attention(q, k, v, scale=a.scale, attn_mask=bias)
        x = x + lin(a.proj, o.transpose(1, 2).reshape(B, -1, C)).mul_(g1)
        h = ln(x).mul(s2.add(1)).add_(h2)
        x = x + lin(blk.ffn.fc2, F.gelu(lin(blk.ffn.fc1, h), approximate="tanh")).mul(g2)
    hs, hb = lin(m.head_nm.ada_lin[1], F.silu(cond)).view(-1, 1, 2, C).unbind(2)
    logits = lin(m.head, ln(x.float()).mul(hs.add(1)).add_(hb)).float()  # (B, L, V)
    return F.cross_entropy(logits.view(-1, logits.size(-1)), tokens.reshape(-1), reduction="none").view(B, -1)


# --------------------------------------------------------------------------- models and inputs


def seeded(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights with realistic scales (N(0, 1/fan_in) matrices, 1 + small noise norms), finished
    as loaded models are (fp32, eval, no grad, the process's CPU linears: ``core/registry/build.finish``)."""
    from visbpp.core.registry.build import finish

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[-1]))
            else:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g) if name.endswith("norm.weight")
                        else 0.02 * torch.randn(p.shape, generator=g))
    return finish(module)


def gpt_case(batch: int):
    from visbpp.models.llamagen.gpt import GPT, GPTConfig

    m = seeded(GPT(GPTConfig()), 0)  # llamagen-b-256: dim 768, 12 layers, 12 heads, 256 tokens
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, m.cfg.vocab_size, (batch, m.cfg.block_size), generator=g)
    labels = torch.randint(0, 1000, (batch,), generator=g)
    table = official_rope_table(m.cfg.grid, m.cfg.head_dim, m.cfg.rope_base)
    return (lambda: m.token_nll(tokens, labels)), (lambda: official_gpt_nll(m, tokens, labels, table))


def var_case(batch: int):
    from visbpp.models.var.transformer import VAR, VARConfig

    m = seeded(VAR(VARConfig(depth=16, embed_dim=1024, num_heads=16, attn_l2_norm=True)), 0)
    with torch.no_grad():
        for blk in m.blocks:
            blk.attn.scale_mul_1H11.fill_(math.log(4.0))
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, m.V, (batch, m.L), generator=g)
    labels = torch.randint(0, 1000, (batch,), generator=g)
    x_in = torch.randn(batch, m.L - m.first_l, m.config.Cvae, generator=g)

    def ours():  # token_nll without the tokenizer's teacher-forcing input (given)
        h, cond = m.hidden(labels, x_in)
        return m.nll_from_hidden(h, cond, tokens)

    return ours, (lambda: official_var_nll(m, x_in, tokens, labels))


def cpu_time(fn) -> tuple[float, torch.Tensor]:
    t0 = time.process_time()
    out = fn()
    return time.process_time() - t0, out


def compare(name: str, ours, official, dtype: str, rounds: int) -> dict:
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if dtype == "bf16" else torch.inference_mode
    with torch.inference_mode(), ctx():
        a, b = ours(), official()  # warm-up
        ratios, t_ours, t_off = [], [], []
        for r in range(rounds):
            if r % 2 == 0:
                to, o = cpu_time(official)
                tv, v = cpu_time(ours)
            else:
                tv, v = cpu_time(ours)
                to, o = cpu_time(official)
            ratios.append(to / tv)
            t_ours.append(tv)
            t_off.append(to)
    return {"model": name, "dtype": dtype, "rounds": rounds, "ratio_median": statistics.median(ratios),
            "ratios": [round(x, 3) for x in ratios], "cpu_s_visbpp": statistics.median(t_ours),
            "cpu_s_official": statistics.median(t_off), "nll_max_abs_diff": float((a - b).abs().max()),
            "nll_mean_visbpp": float(a.double().mean()), "nll_mean_official": float(b.double().mean())}


# --------------------------------------------------------------------------- memory


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()


def _memory_child_fresh(variant: str, batch: int) -> None:
    """One forward in a fresh process: peak RSS during it (sampled every ms) minus RSS before."""
    import gc
    import threading

    ours, official = gpt_case(batch)
    fn = ours if variant == "visbpp" else official
    gc.collect()
    base, peak, stop = _rss(), [0], threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.001)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        fn()
    stop.set()
    th.join()
    print(json.dumps({"variant": variant, "batch": batch, "peak_rss_growth_mib": round((peak[0] - base) / 2**20, 1)}))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--gpt-batch", type=int, default=4)
    p.add_argument("--var-batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtypes", default="fp32,bf16")
    p.add_argument("--models", default="gpt-b,var-d16")
    p.add_argument("--memory", action="store_true", help="also the peak-memory comparison at --memory-batch")
    p.add_argument("--memory-batch", type=int, default=8)
    p.add_argument("--memory-child", help=argparse.SUPPRESS)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.memory_child:
        _memory_child_fresh(a.memory_child, a.gpt_batch)
        return
    from visbpp.core.linear import backend

    print(json.dumps({"torch": torch.__version__, "threads": a.threads, "cpu_linear": backend(),
                      "native_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())}), flush=True)
    for name in a.models.split(","):
        ours, official = gpt_case(a.gpt_batch) if name == "gpt-b" else var_case(a.var_batch)
        batch = a.gpt_batch if name == "gpt-b" else a.var_batch
        for dtype in a.dtypes.split(","):
            r = compare(name, ours, official, dtype, a.rounds)
            r["batch"] = batch
            print(json.dumps(r), flush=True)
        del ours, official
    if a.memory:
        for variant in ("official", "visbpp"):
            r = subprocess.run([sys.executable, __file__, "--memory-child", variant, "--gpt-batch",
                                str(a.memory_batch), "--threads", str(a.threads)],
                               capture_output=True, text=True, check=True)
            print(r.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
