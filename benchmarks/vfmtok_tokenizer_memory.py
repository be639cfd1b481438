"""Peak CPU memory of the VFMTok tokenizer pass at real size (random weights, fp32).

usage: python benchmarks/vfmtok_tokenizer_memory.py [--batch 8] [--threads 2]

Builds the released architecture (DINOv2 ViT-L/14-reg4 at 336 + the region-adaptive encoder, 256
carriers, 6 deformable layers) with random weights and measures, each in a fresh process, the peak
RSS (sampled every ms) during one pass over a batch of random images, minus the RSS just before it
(after a warm-up pass at batch 1):
``encode`` (image -> 256 tokens: DINOv2 levels, projectors, deformable layers, quantiser) and
``region`` (the projectors and deformable layers alone, on random DINOv2 levels). Also reports the
largest tensor any op of the deformable layers produces, next to the size of one
(batch x heads x carriers x all pixels) float32 table, which the implementation never builds.
One JSON line per measurement on stdout.
"""

import argparse
import json
import resource
import subprocess
import sys
import threading
import time


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()


def _tokenizer():
    import torch

    from visbpp.models import get_family

    fam = get_family("vfmtok")
    torch.manual_seed(0)
    tok = fam.build_tokenizer(fam.config_for("vfmtok-b")).float().eval().requires_grad_(False)
    return torch, tok


def child(variant: str, batch: int, threads: int) -> None:
    import gc

    torch, tok = _tokenizer()
    torch.set_num_threads(threads)
    S = tok.image_size
    x = torch.rand(batch, 3, S, S) * 2 - 1
    side = tok.cfg.dino_side // tok.cfg.vit.patch_size
    levels = [torch.randn(batch, side * side, tok.cfg.vit.embed_dim) for _ in range(4)]
    def run(n=batch):
        with torch.inference_mode():
            return tok.encode(x[:n]) if variant == "encode" else tok.encode_transformer([f[:n] for f in levels])

    run(1)  # warm-up at batch 1: lazily loaded kernels and one-time buffers are not counted
    gc.collect()
    base, peak, stop = _rss(), [0], threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.001)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.perf_counter()
    run()
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    n_params = sum(p.numel() for p in tok.parameters())
    print(json.dumps({"variant": variant, "batch": batch, "threads": threads, "wall_s": round(wall, 2),
                      "rss_before_mib": round(base / 2**20, 1), "peak_rss_mib": round(peak[0] / 2**20, 1),
                      "peak_rss_growth_mib": round((peak[0] - base) / 2**20, 1),
                      "weights_mib": round(n_params * 4 / 2**20, 1)}), flush=True)


def largest_tensor(batch: int) -> None:
    """The largest tensor produced inside the deformable layers (one forward at ``batch``)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    torch, tok = _tokenizer()

    class Largest(TorchDispatchMode):
        biggest = (0, "")

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor) and t.numel() > self.biggest[0]:
                    self.biggest = (t.numel(), f"{func} {tuple(t.shape)}")
            return out

    enc = tok.encode_transformer
    side = tok.cfg.dino_side // tok.cfg.vit.patch_size
    maps = [torch.randn(batch, side * side, enc.cfg.dim) for _ in range(4)]
    src = enc.norm_pre1(enc.carrier_tokens).expand(batch, -1, -1)
    with torch.inference_mode(), Largest() as mode:
        enc.transformer(src, enc.slots_pos, maps)
    heads = enc.transformer.layers[0].cross_attn.n_heads
    dense = batch * heads * enc.cfg.n_carrier * 4 * side * side
    print(json.dumps({"variant": "deformable_largest_tensor", "batch": batch, "largest_numel": mode.biggest[0],
                      "largest_mib": round(mode.biggest[0] * 4 / 2**20, 1), "largest_op": mode.biggest[1],
                      "dense_queries_x_pixels_numel": dense, "dense_mib": round(dense * 4 / 2**20, 1)}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(a.child, a.batch, a.threads)
        return
    for variant in ("encode", "region"):
        subprocess.run([sys.executable, __file__, "--child", variant, "--batch", str(a.batch),
                        "--threads", str(a.threads)], check=True)
    largest_tensor(a.batch)


if __name__ == "__main__":
    main()
