"""`visbpp run` (score models on an image folder) and `visbpp bench` (random-weight throughput).

Under ``torchrun`` every rank runs the same command; only rank 0 prints. Bad input gives
one ``error:`` line on stderr and exit code 2; Ctrl-C exits 130 and the run resumes when
the same command is run again.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import List, Optional

import typer
from rich.console import Console

from .cli_errors import fail

err = Console(stderr=True)


def _rank0() -> bool:
    return int(os.environ.get("RANK", 0)) == 0




def _extra_files(items) -> dict:
    from visbpp.core.errors import SettingsError

    from .settings import parse_extras

    try:
        return parse_extras(items)
    except SettingsError as e:
        fail(str(e))


def _jobs(models, family, config, tokenizer, transformer, name, checkpoint_dir, extra=(), order=None):
    from visbpp.models import jobs as J

    own = [o for o in (config, tokenizer, transformer) if o]
    if own:
        if len(own) != 3 or not family:
            fail("a user checkpoint needs all of --family F --config C.json --tokenizer T.pt --transformer M.pt")
        if models:
            fail("--model cannot be combined with --config/--tokenizer/--transformer; run them separately")
        return J.JobPlan([J.job_from_config(family, config, tokenizer, transformer, name, _extra_files(extra), order)])
    if extra:
        fail("--extra is for your own checkpoints (--family F --config C.json ...); registered models find "
              "their extra files like any checkpoint (`visbpp fetch ID`, --checkpoint-dir)")
    ids = list(models)
    if family:
        from visbpp.core.registry.catalog import model_cards

        ids += [c.id for c in model_cards(family)]
    if not ids:
        fail("name the models: --model ID (repeatable), --family F, or --family F --config C.json "
              "--tokenizer T.pt --transformer M.pt (`visbpp models` lists the ids)")
    J.check_order_applies(ids, order)
    plan = J.plan_jobs(ids, checkpoint_dir, order=order)
    for _, msg in plan.missing + plan.errors:
        fail(msg)
    return plan


def _default_data(plan) -> str:
    """The data folder the planned models' family ships (e.g. the micro zoo's held-out digits), when
    every model has the same one; otherwise --data is required."""
    data = plan.data_dir()
    if data is None:
        fail("--data DIR is required: the ImageNet val folder (ImageFolder with 1000 synset folders, "
              "or the flat folder with --labels-csv LOC_val_solution.csv), or your own ImageFolder "
              "(only models that all ship the same data, e.g. the micro zoo, have a default)")
    return data


def _known_errors():
    from visbpp.core.errors import VisbppError

    return VisbppError


def _flops(n: float) -> str:
    return f"{n / 1e9:.1f} GFLOP" if n >= 1e8 else f"{n / 1e6:.2f} MFLOP"


def register(app: typer.Typer) -> None:
    @app.command()
    def run(
        model: List[str] = typer.Option([], "--model", "-m", help="Registry id or alias (repeatable)."),
        family: Optional[str] = typer.Option(None, "--family", help="Every size of this family, or the family of --config."),
        config: Optional[str] = typer.Option(None, "--config", help="Own model: JSON with the official constructor arguments."),
        tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="Own model: tokenizer checkpoint file."),
        transformer: Optional[str] = typer.Option(None, "--transformer", help="Own model: AR transformer checkpoint file."),
        name: Optional[str] = typer.Option(None, "--name", help="Own model: id used in the results."),
        extra: List[str] = typer.Option([], "--extra", help="Own model: a further file the family needs, NAME=PATH "
                                        "(repeatable; e.g. Hita: --extra backbone=dinov2_vitl14_reg4_pretrain.pth)."),
        data: Optional[str] = typer.Option(None, "--data", help="ImageFolder root, or the flat val folder with "
                                           "--labels-csv (default only for families that ship data, e.g. micro)."),
        labels_csv: Optional[str] = typer.Option(None, "--labels-csv", help="Kaggle LOC_val_solution.csv (flat layout)."),
        out: Optional[str] = typer.Option(None, "--out", help="Write per_image.csv, summary.csv, results.json here."),
        limit: Optional[int] = typer.Option(None, "--limit", help="N images (after --per-class), round-robin over "
                                            "classes: the first of every class by file name, then the second, ..."),
        per_class: Optional[int] = typer.Option(None, "--per-class", help="First K images of each class by file name."),
        batch_size: str = typer.Option("16", "--batch-size", help="Images per batch, or 'auto' (largest that fits)."),
        device: str = typer.Option("auto", "--device", help="auto|cuda|mps|cpu"),
        dtype: str = typer.Option("fp32", "--dtype", help="fp32 (reference) or bf16 (autocast, fp32 log-softmax; slow on CPUs without native bf16)."),
        tf32: bool = typer.Option(False, "--tf32/--no-tf32", help="Allow TF32 matmuls on CUDA (off by default)."),
        workers: str = typer.Option("auto", "--workers", help="Decode worker processes: auto (CPU count based, "
                                    "capped), 0 (decode in the main process) or a number."),
        compile_: bool = typer.Option(False, "--compile", help="torch.compile the AR forward (recorded in results.json)."),
        preprocess: str = typer.Option("official", "--preprocess", help="official (each family's own eval "
                                       "transform) or paper (the published table's: whole-image PIL bicubic "
                                       "resize to S x S, (x/255-0.5)/0.5, for every family)."),
        checkpoint_dir: Optional[str] = typer.Option(None, "--checkpoint-dir", help="Folder holding checkpoint files."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output, only the summary."),
        unconditional: bool = typer.Option(False, "--unconditional", help="Also score every image with the null "
                                           "(CFG) class: class information = bits(null) - bits(label); doubles the AR work."),
        recon: bool = typer.Option(False, "--recon", help="Also decode the tokens: PSNR and SSIM per image and "
                                   "tokenizer (recon.csv; cached per tokenizer)."),
        force: bool = typer.Option(False, "--force", help="Recompute a finished run (its results and run state are "
                                   "replaced; cached tokens are reused)."),
        order: Optional[str] = typer.Option(None, "--order", help="Scoring order of random-order models (ARPG, "
                                            "RandAR): raster, or perm:K = the mean over K seeded permutations with "
                                            "raster beside it (default perm:4). Other families refuse it."),
    ) -> None:
        """Score models on an image folder: bits per image, BPP per model (resumable)."""
        from visbpp.core.engine.run_types import RunSettings

        from .settings import parse_batch_size, parse_workers

        known = _known_errors()
        try:  # the options are translated here and checked by RunSettings
            from visbpp.core.store.results import usable_dirs

            bs, nworkers = parse_batch_size(batch_size), parse_workers(workers)
            usable_dirs(out)  # --out and the cache dir (VISBPP_HOME) are checked before any work
            plan = _jobs(model, family, config, tokenizer, transformer, name, checkpoint_dir, extra, order)
            jobs, data = plan.jobs, data or _default_data(plan)
            settings = RunSettings(data=data, labels_csv=labels_csv, out_dir=out, limit=limit, per_class=per_class,
                                   batch_size=bs, device=device, dtype=dtype, tf32=tf32, workers=nworkers,
                                   preprocess=preprocess, unconditional=unconditional, recon=recon,
                                   compile=compile_, force=force)
        except known as e:
            fail(str(e))
        from visbpp.core.engine.entry import score

        show = _rank0() and not quiet
        display = (RichDisplay() if sys.stdout.isatty() else PlainDisplay()) if show else None
        t0 = time.perf_counter()
        try:
            if display is not None:
                with display:
                    result = score(jobs, settings, display.on_event)
            else:
                result = score(jobs, settings, warn_on_stderr if _rank0() else None)
        except KeyboardInterrupt:
            if _rank0():
                sys.stderr.write("interrupted: finished batches are saved; run the same command again to resume\n")
            raise typer.Exit(130) from None
        except known as e:
            fail(str(e))
        except OSError as e:
            fail(f"{e}")
        if not _rank0():
            return
        if result.already_finished and display is None:  # the display has said so already
            typer.echo(f"run {result.run_id} already finished: nothing recomputed (results in {result.store_dir}; "
                       f"--force recomputes it)")
        for line in summary_lines(result, time.perf_counter() - t0):
            typer.echo(line)
        if result.cancelled:
            raise typer.Exit(1)

    @app.command()
    def bench(
        model: str = typer.Option(..., "--model", "-m", help="Registry id (random weights of its real architecture)."),
        batch_size: int = typer.Option(8, "--batch-size", min=1),
        device: str = typer.Option("auto", "--device", help="auto|cuda|mps|cpu"),
        dtype: str = typer.Option("fp32", "--dtype", help="fp32 or bf16"),
        tf32: bool = typer.Option(False, "--tf32/--no-tf32"),
        iters: int = typer.Option(3, "--iters", min=1, help="Timed iterations (after one warm-up)."),
        as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
        seed: int = typer.Option(0, "--seed", help="Seed of the random weights, images and labels (reproducible)."),
    ) -> None:
        """Throughput, peak memory, FLOPs/image and MFU of a model with random weights (no download)."""
        from visbpp.core.engine.bench import bench as run_bench
        from visbpp.core.engine.bench import seed as seed_weights
        from visbpp.core.engine.run_types import check_dtype
        from visbpp.models.jobs import random_modules

        known = _known_errors()
        try:
            check_dtype(dtype)
            seed_weights(seed)
            tok, ar = random_modules(model)
            res = run_bench(tok, ar, batch_size, device, dtype, tf32, iters=iters, seed=seed)
        except known as e:
            fail(str(e))
        res["model_id"] = model
        if as_json:
            typer.echo(json.dumps(res))
            return
        gb = (res["peak_memory_bytes"] or 0) / 2**30
        mfu = lambda v: f"{100 * v:.1f}%" if v is not None else "n/a (peak unknown)"  # noqa: E731
        typer.echo(f"{model} on {res['device']} ({res['device_name'] or 'cpu, %d threads' % res['threads']}), "
                   f"{dtype}, batch {batch_size}, {res['resolution']}px, {res['tokens_per_image']} tokens/image")
        typer.echo(f"  tokenizer: {res['tokenizer_images_per_s']:.2f} images/s, "
                   f"{_flops(res['tokenizer_flops_per_image'])}/image, MFU {mfu(res['tokenizer_mfu'])}")
        typer.echo(f"  AR model:  {res['ar_images_per_s']:.2f} images/s, {res['ar_tokens_per_s']:.0f} tokens/s, "
                   f"{_flops(res['ar_flops_per_image'])}/image, MFU {mfu(res['ar_mfu'])}")
        typer.echo(f"  peak memory: {gb:.2f} GiB ({res['peak_memory_kind']})")
        if res.get("bpp_bf16") is not None:
            typer.echo(f"  BPP fp32 {res['bpp_fp32']:.6f} vs bf16 {res['bpp_bf16']:.6f} "
                       f"(relative difference {res['bf16_bpp_rel_diff']:.2e}, random weights)")


# ---------------------------------------------------------------------------------------------
# progress display: engine events -> Rich progress bars (terminal) or plain lines (pipes, logs)


def _fmt_mem(m) -> str:
    if m is None:
        return ""
    if m.allocated is not None and m.reserved is not None:
        peak = f", peak {m.peak / 2**30:.2f}" if m.peak is not None else ""
        return f"{m.device} {m.allocated / 2**30:.2f}/{m.reserved / 2**30:.2f} GiB alloc/reserved{peak}"
    return f"RSS {m.rss / 2**30:.2f} GiB" if m.rss else ""


def _num(v, fmt: str) -> str:
    """``v`` formatted, or "n/a" when there is no value (a model that scored no image)."""
    return "n/a" if v is None else format(v, fmt)


def warn_on_stderr(e) -> None:
    """Engine warnings (StageChanged with stage "warning") as one ``warning:`` line on stderr, even with --quiet."""
    from visbpp.core.engine import events as E

    if isinstance(e, E.StageChanged) and e.stage == "warning":
        sys.stderr.write(f"warning: {f'[{e.model_id}] ' if e.model_id else ''}{e.detail}\n")
        sys.stderr.flush()


def _fmt_eta(s) -> str:
    if s is None:
        return "?"
    s = int(s)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class PlainDisplay:
    """One line per stage and at most one progress line every ``every`` seconds (plus the last)."""

    def __init__(self, every: float = 10.0, stream=None):
        self.every, self.last, self.stream = every, 0.0, stream or sys.stdout

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

    def _print(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def on_event(self, e) -> None:
        from visbpp.core.engine import events as E

        if isinstance(e, E.RunStarted):
            self._print(f"run {e.run_id}: {len(e.models)} model(s), {e.total_images} images: {', '.join(e.models)}")
        elif isinstance(e, E.StageChanged) and e.stage == "warning":
            warn_on_stderr(e)
        elif isinstance(e, E.StageChanged):
            self._print(f"[{e.model_id or 'run'}] {e.stage}" + (f": {e.detail}" if e.detail else ""))
        elif isinstance(e, E.Progress):
            now = time.monotonic()
            if e.done == e.total or now - self.last >= self.every:
                self.last = now
                parts = [f"{e.done}/{e.total} images", f"{e.images_per_s:.2f} images/s", f"ETA {_fmt_eta(e.eta_s)}",
                         _fmt_mem(e.memory)]
                self._print(f"[{e.model_id}] {e.stage} " + ", ".join(p for p in parts if p))
        elif isinstance(e, E.ImageSkipped):
            self._print(f"skipped {e.image}: {e.reason}")
        elif isinstance(e, E.ModelFinished):
            self._print(f"[{e.model_id}] done: {e.n_images} images, bpp {_num(e.bpp, '.6f')}, "
                        f"bits_per_token {_num(e.bits_per_token, '.4f')}")


class RichDisplay(PlainDisplay):
    """A Rich progress bar per stage; other events as lines above the bars."""

    def __init__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        super().__init__()
        self.console = Console()
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                                 TextColumn("{task.fields[mem]}"), console=self.console, transient=False)
        self.tasks: dict = {}

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *a):
        self.progress.stop()
        return False

    def _print(self, line: str) -> None:
        self.progress.console.print(line, markup=False, highlight=False)

    def on_event(self, e) -> None:
        from visbpp.core.engine import events as E

        if isinstance(e, E.Progress):
            key = (e.model_id, e.stage)
            if key not in self.tasks:
                self.tasks[key] = self.progress.add_task(f"{e.model_id} {e.stage}", total=e.total, rate="", mem="")
            self.progress.update(self.tasks[key], completed=e.done, total=e.total,
                                 rate=f"{e.images_per_s:.2f} img/s", mem=_fmt_mem(e.memory))
        else:
            super().on_event(e)


def order_line(m: dict) -> str:
    """The per-order BPPs of a model scored in several orders: each order, the headline's spread, raster beside."""
    bpp = m["order_bpp"]
    each = ", ".join(f"{k} {v:.6f}" for k, v in bpp.items())
    std = f", std over the averaged orders {m['order_std_bpp']:.6f}" if m.get("order_std_bpp") is not None else ""
    return f"order {m.get('order', '?')}: bpp = {m.get('order_headline', '?')}{std}; per order: {each}"


def summary_lines(result, elapsed: float) -> list[str]:
    lines = []
    for m in result.models:
        ref = f", reference_bpp {m['reference_bpp']:.6f}" if m.get("reference_bpp") else ""
        pp = f" ({m['preprocess']} preprocessing)" if m.get("preprocess", "official") != "official" else ""
        pp += f" [order {m['order']}]" if m.get("order") else ""
        ci = (f"[95% CI {_num(m['bpp_ci_low'], '.6f')}, {_num(m['bpp_ci_high'], '.6f')}]"
              if m.get("bpp_ci_low") is not None else f"({m.get('bpp_ci_note') or 'no CI'})")
        hw = m.get("bits_per_hw")
        lines.append(f"{m['model_id']}{pp}: bpp {_num(m['bpp'], '.6f')} {ci}{ref}; bits_per_hw {_num(hw, '.5f')}, "
                     f"bits_per_token {_num(m['bits_per_token'], '.4f')}; "
                     f"{m['n_images']} images, {m['images_skipped']} skipped")
        if m.get("class_info_bits") is not None:
            paper = (f"; paper-protocol expectation (10% label dropout) BPP {m['paper_expected_bpp']:.6f}"
                     if m.get("paper_expected_bpp") is not None else "")
            cci = (f"[95% CI {_num(m['class_info_ci_low'], '.3f')}, {_num(m['class_info_ci_high'], '.3f')}]"
                   if m.get("class_info_ci_low") is not None else f"({m.get('class_info_ci_note') or 'no CI'})")
            lines.append(f"  class information: bits(null) - bits(label) = {m['class_info_bits']:.3f} bits/image "
                         f"{cci}; "
                         f"BPP with the null class {m['bpp_null']:.6f}{paper}")
        elif m.get("class_info"):
            lines.append(f"  class information: {m['class_info']}")
        if m.get("order_bpp"):
            lines.append("  " + order_line(m))
        if m.get("recon_psnr") is not None:
            lines.append(f"  tokenizer reconstruction: PSNR {m['recon_psnr']:.2f} dB, SSIM {m['recon_ssim']:.4f} "
                         f"(mean over {m['recon_n']} images)")
    if result.models:
        from visbpp.core.store.results import CI_METHOD

        lines.append(f"CIs: {CI_METHOD}")
    if result.skipped:
        where = result.out_dir or result.store_dir
        listed = os.path.join(where, "skipped.csv") if where else "results.json of the run"
        lines.append(f"{len(result.skipped)} image(s) skipped (listed in {listed})")
    if result.cancelled:
        lines.append("run incomplete: run the same command again to resume")
    elif result.out_dir:
        lines.append(f"results written to {result.out_dir} ({elapsed:.1f} s)")
    return lines
