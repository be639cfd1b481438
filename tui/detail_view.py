"""The Models tab's detail pane for the cursor row: card, published figures with their sources,
protocol and guidance, checkpoint files (path, sha256), and the measured runs of the model."""

from __future__ import annotations

import sys
from typing import Sequence

from rich.console import Group
from rich.text import Text

CKPT_LEGEND = "Ckpt: verified = sha256 checked · ok = on disk · missing = not on disk · ? = not checked yet"


def _published(label: str, p) -> list[Text]:
    if p is None:
        return [Text(f"{label}: -", style="dim")]
    out = [Text.assemble((f"{label} {p.value:g}", "bold"), f" ({p.metric}, guidance {p.guidance}"
                         + (f", eval {p.eval_resolution}px" if p.eval_resolution else "") + ")")]
    out.append(Text(f"  source: {p.source}", style="dim"))
    if p.protocol:
        out.append(Text(f"  protocol: {p.protocol}", style="dim"))
    return out


def card_detail(card, status=None, measured: Sequence[dict] = (), checkpoint_dir: str | None = None) -> Group:
    """Everything known about ``card`` (a ``ModelCard``); ``measured``: its stored run summaries."""
    lines: list = [Text(card.id, style="bold"),
                   Text(f"{card.family_label} {card.size} · {card.params_label} params · {card.resolution}px · "
                        f"{card.tokens_per_image} tokens · codebook {card.codebook_size}")]
    if card.base_model:
        lines.append(Text(f"fine-tune of {card.base_model}"))
    if card.reference_bpp is not None:
        lines.append(Text(f"published BPP {card.reference_bpp:.5f}"))
    lines += _published("FID", card.fid) + _published("rFID", card.rfid)
    for alt in card.alt_fid:
        lines += _published("alt FID", alt)
    lines.append(Text("Checkpoints", style="bold"))
    ck = sys.modules.get("visbpp.core.registry.checkpoints")   # imported by the workers; never imported on the UI thread
    try:
        files = ck.status(card, checkpoint_dir or None) if ck else []
    except Exception:  # noqa: BLE001 - the pane still shows the card
        files = []
    for s in files:
        f = s.file
        path = getattr(s, "path", None) or "-"
        lines.append(Text(f"  {f.role}: {f.filename} [{s.state}]"))
        lines.append(Text(f"    path: {path}", style="dim"))
        lines.append(Text(f"    sha256: {f.sha256 or 'recorded on first use'}", style="dim"))
    if not files:
        lines.append(Text("  (status not available)", style="dim"))
    lines.append(Text("Measured runs", style="bold"))
    if measured:
        for m in measured:
            bpp = m.get("bpp")
            lines.append(Text(f"  BPP {bpp:.5f} on {m.get('n_images', '?')} images"
                              + (f" · {m.get('path')}" if m.get("path") else "") if bpp is not None else "  -"))
    else:
        lines.append(Text("  none yet (select it and press r)", style="dim"))
    if card.notes:
        lines.append(Text(card.notes, style="dim italic"))
    lines.append(Text(CKPT_LEGEND, style="dim"))
    return Group(*lines)


def custom_detail(m) -> Group:
    return Group(Text(m.label, style="bold"), Text(f"custom {m.family} checkpoint"),
                 Text(f"config: {m.config}", style="dim"), Text(f"tokenizer: {m.tokenizer}", style="dim"),
                 Text(f"transformer: {m.transformer}", style="dim"), Text(CKPT_LEGEND, style="dim"))
