"""Training of the micro zoo (``visbpp zoo train``): seeded, CPU, a few minutes.

1. a VQ tokenizer (LlamaGen's modules at tiny width) on the training digits;
2. four class-conditional GPTs (LlamaGen's GPT) on the tokens of the training digits, each
   image also shifted by up to one pixel (9 versions) for more data;
3. a small digit classifier for micro-FID features.
Weights are written as float16 safetensors; all figures (held-out BPP, micro-FID, micro rFID)
are computed from the weights as written, so that scoring the shipped files reproduces them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from visbpp.core.files import atomic_write_text, umask
from visbpp.core.registry.build import finish
from visbpp.core.registry.cards.micro import SIZES
from visbpp.core.units import LN2

from ..llamagen import FAMILY as LLAMAGEN
from ..llamagen.gpt import GPT
from ..llamagen.tokenizer import VQTokenizer
from . import classifier as clf
from . import config as zc
from .data import IMAGE_SIZE, NUM_CLASSES, split

LogFn = Callable[[str], None]


@dataclass(frozen=True)
class TrainSettings:
    seed: int = 0
    tokenizer_steps: int = 800
    gpt_steps: int = 800
    batch_size: int = 64            # GPT batch; the tokenizer uses half of it
    samples_per_class: int = 100   # generated images per class for micro-FID
    classifier_epochs: int = 30


def _shifts(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, S, S) -> (9N, 3, S, S): every image rolled by -1..1 pixels in both directions."""
    return torch.cat([torch.roll(x, shifts=(dy, dx), dims=(2, 3)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])


def train_tokenizer(x: torch.Tensor, s: TrainSettings, log: LogFn) -> VQTokenizer:
    """VQ training: MSE reconstruction + codebook + 0.25 commitment loss, straight-through, dead-code restarts."""
    torch.manual_seed(s.seed)
    g = torch.Generator().manual_seed(s.seed)
    first = next(iter(SIZES))  # the tokenizer section is the same in every size's config
    tok = LLAMAGEN.build_tokenizer(zc.config(first, SIZES[first]))
    opt = torch.optim.Adam(tok.parameters(), lr=2e-3)
    used = torch.zeros(zc.CODEBOOK_SIZE)
    xs = _shifts(x)
    for step in range(s.tokenizer_steps):
        xb = xs[torch.randint(0, len(xs), (s.batch_size // 2,), generator=g)]
        z = F.normalize(tok.latent(xb), dim=1)                      # (B, C, h, w)
        e = tok.quantize.codebook()                                 # (K, C), normalised
        zf = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])          # (B*h*w, C)
        idx = torch.cdist(zf.detach(), e.detach()).argmin(1)
        zq = e[idx]
        loss_vq = F.mse_loss(zq, zf.detach()) + 0.25 * F.mse_loss(zf, zq.detach())
        zst = (zf + (zq - zf).detach()).view(z.shape[0], z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
        recon = tok.decoder(tok.post_quant_conv(zst))
        loss = F.mse_loss(recon, xb) + loss_vq
        opt.zero_grad()
        loss.backward()
        opt.step()
        used.index_add_(0, idx, torch.ones_like(idx, dtype=torch.float))
        if step % 100 == 99:
            dead = (used == 0).nonzero().flatten()
            if len(dead) and step < s.tokenizer_steps - 200:  # restart unused codes on current latents
                pick = torch.randint(0, len(zf), (len(dead),), generator=g)
                with torch.no_grad():
                    tok.quantize.embedding.weight[dead] = zf.detach()[pick]
            log(f"tokenizer step {step + 1}: loss {loss.item():.4f}, codes used {(used > 0).sum().item()}/{len(used)}")
            used.zero_()
    return finish(tok)   # as the scoring loads it (eval, no grad, the process's CPU linears)


def train_gpt(model_id: str, tokens: torch.Tensor, labels: torch.Tensor, s: TrainSettings, log: LogFn) -> GPT:
    """Cross-entropy on teacher-forced tokens; AdamW with warm-up and cosine decay."""
    torch.manual_seed(s.seed)
    g = torch.Generator().manual_seed(s.seed + 1)
    gpt = LLAMAGEN.build_transformer(zc.config(model_id, SIZES[model_id]))
    opt = torch.optim.AdamW(gpt.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.05)
    warm = 100
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, i / s.gpt_steps))))
    for step in range(s.gpt_steps):
        b = torch.randint(0, len(tokens), (s.batch_size,), generator=g)
        drop = torch.rand(len(b), generator=g) < zc.LABEL_DROPOUT  # label dropout: the null class row
        lab = torch.where(drop, torch.full_like(labels[b], gpt.null_class), labels[b])
        logits = gpt.output(gpt.hidden_states(tokens[b], lab)).float()  # (B, L, V); forward refuses the null row
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[b].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(gpt.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 200 == 199:
            log(f"{model_id} step {step + 1}: {loss.item() / LN2:.3f} bits/token")
    return finish(gpt)   # as the scoring loads it (eval, no grad, the process's CPU linears)


@torch.inference_mode()
def sample(gpt: GPT, labels: torch.Tensor, generator: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
    """Class-conditional ancestral sampling, no guidance: (B,) labels -> (B, L) tokens."""
    B, L = len(labels), gpt.tokens_per_image
    tokens = torch.zeros(B, L, dtype=torch.long)
    for j in range(L):
        h = gpt.hidden_states(tokens[:, : j + 1], labels)           # row j predicts token j
        p = torch.softmax(gpt.output(h[:, -1]).float() / temperature, dim=-1)
        tokens[:, j] = torch.multinomial(p, 1, generator=generator).squeeze(1)
    return tokens


def heldout_bits(tok: VQTokenizer, gpt: GPT, x: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Bits per held-out image (float64)."""
    nll = gpt.token_nll(tok.encode(x), labels)
    return (nll.double().sum(-1) / LN2).numpy()


def _half_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to(torch.float16).contiguous() for k, v in module.state_dict().items()}


def _roundtrip(module: torch.nn.Module) -> None:
    """Round the weights to float16 and back, i.e. to exactly what the shipped file holds."""
    module.load_state_dict({k: v.float() for k, v in _half_state(module).items()})


def train_zoo(out_dir: str | Path, s: TrainSettings = TrainSettings(), log: LogFn = print) -> dict:
    """Train everything, write ``<out_dir>/*.safetensors`` and ``zoo.json``; returns the zoo metadata."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # reproducible reductions, and no thread oversubscription on small CPUs
    try:
        return _train_zoo(out_dir, s, log)
    finally:
        torch.set_num_threads(threads)


def _train_zoo(out_dir: str | Path, s: TrainSettings, log: LogFn) -> dict:
    t0 = time.time()
    out = Path(out_dir)
    torch.manual_seed(s.seed)
    tr_img, tr_lab = split("train")
    ho_img, ho_lab = split("heldout")
    x_tr, x_ho = clf.to_input(tr_img), clf.to_input(ho_img)
    y_tr, y_ho = torch.from_numpy(tr_lab), torch.from_numpy(ho_lab)

    tok = train_tokenizer(x_tr, s, log)
    _roundtrip(tok)
    net = clf.train_classifier(tr_img, tr_lab, seed=s.seed, epochs=s.classifier_epochs)
    _roundtrip(net)
    acc = clf.accuracy(net, ho_img, ho_lab)
    log(f"classifier held-out accuracy {acc:.3f}")
    recon = tok.decode(tok.encode(x_ho))
    rfid = clf.micro_fid(net, recon, x_ho)
    log(f"tokenizer micro rFID {rfid:.3f}")

    tokens_tr = tok.encode(_shifts(x_tr))
    labels_tr = y_tr.repeat(9)
    files = {"micro_vq.safetensors": _half_state(tok), "micro_classifier.safetensors": _half_state(net)}
    models = {}
    gen = torch.Generator().manual_seed(s.seed + 2)
    sample_labels = torch.arange(NUM_CLASSES).repeat_interleave(s.samples_per_class)
    for mid in SIZES:
        gpt = train_gpt(mid, tokens_tr, labels_tr, s, log)
        _roundtrip(gpt)
        bits = heldout_bits(tok, gpt, x_ho, y_ho)
        imgs = tok.decode(sample(gpt, sample_labels, gen))
        mfid = clf.micro_fid(net, imgs, x_ho)
        bpp = float(bits.sum() / (len(bits) * 3 * IMAGE_SIZE * IMAGE_SIZE))
        models[mid] = {
            "params": sum(p.numel() for p in gpt.parameters()),
            "heldout_bpp": bpp,
            "heldout_bits_per_token": float(bits.mean() / gpt.tokens_per_image),
            "micro_fid": mfid,
            "file": f"{mid.replace('-', '_')}.safetensors",
        }
        files[models[mid]["file"]] = _half_state(gpt)
        log(f"{mid}: {models[mid]['params']} params, held-out BPP {bpp:.5f}, micro-FID {mfid:.3f}")
    return write_zoo(out, files, lambda sha: _meta(s, tok, net, rfid, acc, models, sha, t0))


def write_zoo(out: Path, files: dict[str, dict], make_meta: Callable[[dict], dict]) -> dict:
    """Write ``files`` (name -> state dict) and ``zoo.json`` (``make_meta(sha256 per file)``) as a
    new zoo in a staging folder beside ``out``, then swap it in whole; returns the metadata."""
    stage = _staging(out)
    try:
        sha = {}
        for name, sd in files.items():
            save_file(sd, str(stage / name))
            sha[name] = hashlib.sha256((stage / name).read_bytes()).hexdigest()
        meta = make_meta(sha)
        atomic_write_text(stage / "zoo.json", json.dumps(meta, indent=1, sort_keys=True))
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _swap_in(stage, out, keep=set(files) | {"zoo.json"})
    return meta


def _meta(s, tok, net, rfid, acc, models, sha, t0) -> dict:
    meta = {
        "seed": s.seed,
        "settings": s.__dict__,
        "torch": torch.__version__,
        "dataset": "sklearn digits, 16x16 RGB; held-out = index % 5 == 0 (360 images), train = rest (1437)",
        "tokenizer": {"file": "micro_vq.safetensors", "params": sum(p.numel() for p in tok.parameters()),
                      "micro_rfid": rfid},
        "classifier": {"file": "micro_classifier.safetensors", "heldout_accuracy": acc},
        "models": models,
        "sha256": sha,
        "train_seconds": round(time.time() - t0, 1),
    }
    return meta


def _staging(out: Path) -> Path:
    """A fresh folder beside ``out`` for the new zoo (stale ones from a killed run removed; an old
    zoo left aside by a kill between the two renames of :func:`_swap_in` put back)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    for p in out.parent.glob(f".{out.name}.new-*"):
        shutil.rmtree(p, ignore_errors=True)
    for p in sorted(out.parent.glob(f".{out.name}.old-*")):
        if out.exists():
            shutil.rmtree(p, ignore_errors=True)
        else:
            os.rename(p, out)
    return Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.new-"))


def _swap_in(stage: Path, out: Path, keep: set[str]) -> None:
    """Replace the zoo in ``out`` by ``stage`` whole: other files of ``out`` are carried over, then
    two renames (a kill between them leaves the old zoo aside, restored by the next run)."""
    os.chmod(stage, 0o777 & ~umask())
    if out.is_dir():
        for p in out.iterdir():
            if p.name not in keep and not (stage / p.name).exists():
                (shutil.copytree if p.is_dir() else shutil.copy2)(p, stage / p.name)
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        os.rename(out, old)
    os.rename(stage, out)
    shutil.rmtree(old, ignore_errors=True)
