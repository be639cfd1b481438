"""GigaTok cards: five 1-D VQ tokenizers (256 tokens, 16384 codes) and eight 1-D GPTs at 256
(spec: shared/specs/gigatok.md).

Not in the published table. The same GPT-B recipe was trained on all five tokenizers: those
five cards form the "GigaTok GPT-B" comparison (the rFID term at a fixed AR model). Fit groups
are per tokenizer (GPT-B/XL/XXL on B-L form one group). Every file is a Google Drive file
linked from the upstream README (no other host).
"""

from visbpp.core.registry.catalog import CheckpointFile, ModelCard, Published, TokenizerCard

_DRIVE = "https://drive.google.com/file/d/{id}/view"
_README_TOK = "GigaTok README (upstream commit 182920c), 'Download Checkpoints' tokenizer table, row {row}"
_README_LARGE = "GigaTok README (upstream commit 182920c), 'Larger AR models' table, row {row}"
_RFID_PROTO = ("ImageNet val 50k, center-cropped to 256, encode + decode from tokens; ADM evaluator against the "
               "256 crops (val_imagenet.npz)")
_LPIPS_PROTO = "VGG LPIPS averaged over the 50k ImageNet val 256 crops (same reconstructions as rFID)"
_GFID_PROTO = ("50k samples at 256, temperature 1, top-k 0, top-p 1, classifier-free guidance with the 'step' "
               "schedule (step-start-ratio 0.18), CFG scale searched per model (not stated per row), ADM "
               "evaluator vs VIRTUAL_imagenet256_labeled.npz; with guidance (no guidance-free FID published)")
_CFG = "cfg (scale not stated)"  # searched per model with the 'step' schedule; the scales are not published
COMPARE_GPT_B = "GigaTok GPT-B"  # the same GPT-B recipe trained on each of the five tokenizers


def _file(*, role: str, filename: str, drive_id: str) -> CheckpointFile:
    return CheckpointFile(role, filename, _DRIVE.format(id=drive_id), "model", repo=f"gdrive:{drive_id}")


def _readme(value: float, source: str, protocol: str, guidance: str) -> Published:
    return Published(value, source, protocol, guidance=guidance, eval_resolution=256, origin="readme")


def _tok(*, tid, row, filename, drive_id, params, enc, dec, rfid, lpips, notes="", entropy_loss_ratio=0.0):
    (en, ew, el, eh), (dn, dw, dl, dh) = enc, dec
    return TokenizerCard(
        id=tid,
        family="gigatok",
        params=params,
        codebook_size=16384,
        code_dim=8,
        downsample=16,
        file=_file(role="tokenizer", filename=filename, drive_id=drive_id),
        rfid=((256, _readme(rfid, _README_TOK.format(row=row), _RFID_PROTO, "none")),),
        lpips=_readme(lpips, _README_TOK.format(row=row), _LPIPS_PROTO, "none"),
        arch={"encoder_size": en, "encoder_width": ew, "encoder_layers": el, "encoder_heads": eh,
              "decoder_size": dn, "decoder_width": dw, "decoder_layers": dl, "decoder_heads": dh,
              "entropy_loss_ratio": entropy_loss_ratio},  # a training setting, kept so the config equals the yaml
        notes=("1-D tokenizer: 256 tokens in latent-query (coarse-to-fine) order, CNN grid 16x16. The state dict "
               "also holds the training-only distillation head and the codebook-usage buffer (loaded strictly, "
               "unused). " + notes).strip(),
    )


_SMALL, _BASE = ("small", 512, 6, 8), ("base", 768, 12, 12)
_LARGE, _XL, _XXL = ("large", 1024, 24, 16), ("xl", 1280, 36, 20), ("xxl", 1536, 48, 24)

TOKENIZERS = (
    _tok(tid="gigatok-vq-ss", row="S-S", filename="VQ_SS256_e100.pt", drive_id="1Q_WHCT6mdNnu0GkHCm0CbXaP6kFeTe5h",
         params=136_073_227, enc=_SMALL, dec=_SMALL, rfid=1.01, lpips=0.2226),
    _tok(tid="gigatok-vq-sb", row="S-B", filename="VQ_SB256_e200.pt", drive_id="17K-h2Jwep53RUEf6CEOV3ro7Cz_DaIWC",
         params=232_399_627, enc=_SMALL, dec=_BASE, rfid=0.89, lpips=0.2121),
    _tok(tid="gigatok-vq-bl", row="B-L", filename="VQ_BL256_e200.pt", drive_id="1VnBu4aj0N7lFa1_wKBdTgLNZmaNgFvwi",
         params=621_637_131, enc=_BASE, dec=_LARGE, rfid=0.81, lpips=0.2059),
    _tok(tid="gigatok-vq-bl-dino", row="B-L (dino disc)", filename="VQ_BL256_dino_disc.pt",
         drive_id="11bXyg6y15hIWYnIsl7YbwDtRAJMK7jjn", params=621_637_131, enc=_BASE, dec=_LARGE, rfid=0.51,
         lpips=0.2056, notes="Same architecture as B-L; trained with a DINOv2-based discriminator."),
    _tok(tid="gigatok-vq-xlxxl", row="XL-XXL", filename="VQ_XLXXL256_e300.pt", drive_id="1HK_bV_zklLfGmIHGE4gMwjfhLLKi6Z3G",
         params=2_893_970_443, enc=_XL, dec=_XXL, rfid=0.79, lpips=0.1947, entropy_loss_ratio=0.005),
)

_GROUP = {"gigatok-vq-ss": "GigaTok S-S", "gigatok-vq-sb": "GigaTok S-B", "gigatok-vq-bl": "GigaTok B-L",
          "gigatok-vq-bl-dino": "GigaTok B-L-dino", "gigatok-vq-xlxxl": "GigaTok XL-XXL"}
# GPT sizes as plain data (upstream ModelArgs names) with their exact parameter counts.
_GPT = {
    "B": (111_085_824, {"n_layer": 12, "n_head": 12, "dim": 768}),
    "XL": (775_028_480, {"n_layer": 36, "n_head": 20, "dim": 1280}),
    "XXL": (1_411_367_424, {"n_layer": 48, "n_head": 24, "dim": 1536}),
}


def _card(*, mid, gpt, tok_id, tok_row, filename, drive_id, gfid, source, aliases):
    params, arch = _GPT[gpt]
    tok = next(t for t in TOKENIZERS if t.id == tok_id)
    return ModelCard(
        id=mid,
        family="gigatok",
        family_label="GigaTok",
        size=f"GPT-{gpt} on {tok_row}",
        params=params,
        resolution=256,
        tokenizer_id=tok_id,
        codebook_size=16384,
        tokens_per_image=256,
        files=(_file(role="transformer", filename=filename, drive_id=drive_id),),
        fid=_readme(gfid, source, _GFID_PROTO, _CFG),
        rfid=tok.rfid[0][1],
        reference_bpp=None,
        aliases=aliases,
        group=_GROUP[tok_id],
        in_published_table=False,
        arch=dict(arch),
        compare=(COMPARE_GPT_B,) if gpt == "B" else (),
        notes="1-D GPT: LlamaGen's blocks with a learned absolute position table (257 rows) instead of RoPE.",
    )


CARDS = (
    _card(mid="gigatok-b-ss", gpt="B", tok_id="gigatok-vq-ss", tok_row="S-S", filename="GPT_B256_e300_VQ_SS.pt",
          drive_id="1VTaBPP-UUE6wc148vQQejfYNVjyYm4IS", gfid=4.05, source=_README_TOK.format(row="S-S (GPT-B gFID)"),
          aliases=("GigaTok GPT-B S-S", "GPT_B256_e300_VQ_SS")),
    _card(mid="gigatok-b-sb", gpt="B", tok_id="gigatok-vq-sb", tok_row="S-B", filename="GPT_B256_e300_VQ_SB.pt",
          drive_id="1aeMpU5ybvs0s5wsuhBoTZDhYYc4WHZh7", gfid=3.83, source=_README_TOK.format(row="S-B (GPT-B gFID)"),
          aliases=("GigaTok GPT-B S-B", "GPT_B256_e300_VQ_SB")),
    _card(mid="gigatok-b-bl", gpt="B", tok_id="gigatok-vq-bl", tok_row="B-L", filename="GPT_B256_e300_VQ_BL.pt",
          drive_id="1ZiRAk9pHhcrrbVMP1qSf4rDfSJMCsY6Y", gfid=3.26, source=_README_TOK.format(row="B-L (GPT-B gFID)"),
          aliases=("GigaTok GPT-B B-L", "GPT_B256_e300_VQ_BL")),
    _card(mid="gigatok-b-bl-dino", gpt="B", tok_id="gigatok-vq-bl-dino", tok_row="B-L (dino disc)",
          filename="GPT_B256_e300_VQ_BL_dino_disc.pt", drive_id="1BckVcQ7NPipa8tjAazwBy0usJnO8pdHp", gfid=3.33,
          source=_README_TOK.format(row="B-L dino disc (GPT-B gFID)"),
          aliases=("GigaTok GPT-B B-L dino", "GPT_B256_e300_VQ_BL_dino_disc")),
    _card(mid="gigatok-b-xlxxl", gpt="B", tok_id="gigatok-vq-xlxxl", tok_row="XL-XXL", filename="GPT_B256_e300_VQ_XLXXL.pt",
          drive_id="1zIIy6TVo8WIHiGKFp83CfyFaUytFQ1uR", gfid=3.15, source=_README_TOK.format(row="XL-XXL (GPT-B gFID)"),
          aliases=("GigaTok GPT-B XL-XXL", "GPT_B256_e300_VQ_XLXXL")),
    _card(mid="gigatok-xl-bl", gpt="XL", tok_id="gigatok-vq-bl", tok_row="B-L", filename="GPT_XL256_e300_VQ_BL.pt",
          drive_id="1ABRaQ8h-mv-JE6gHlAnTPUJTlbd25yQt", gfid=2.13, source=_README_LARGE.format(row="GPT-XL, B-L tokenizer"),
          aliases=("GigaTok GPT-XL B-L", "GPT_XL256_e300_VQ_BL")),
    _card(mid="gigatok-xxl-bl", gpt="XXL", tok_id="gigatok-vq-bl", tok_row="B-L", filename="GPT_XXL256_e300_VQ_BL.pt",
          drive_id="1qC1wkF99IV2cptGR_ALuqqXz0oKBiKp9", gfid=2.03,
          source=_README_LARGE.format(row="GPT-XXL, B-L tokenizer"), aliases=("GigaTok GPT-XXL B-L", "GPT_XXL256_e300_VQ_BL")),
    _card(mid="gigatok-xxl-xlxxl", gpt="XXL", tok_id="gigatok-vq-xlxxl", tok_row="XL-XXL",
          filename="GPT_XXL256_e300_VQ_XLXXL.pt", drive_id="1yMPOYx3oR1PZpZynEotQAO720UVxL0iL", gfid=1.98,
          source=_README_LARGE.format(row="GPT-XXL, XL-XXL tokenizer"),
          aliases=("GigaTok GPT-XXL XL-XXL", "GPT_XXL256_e300_VQ_XLXXL")),
)
