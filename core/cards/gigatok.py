"""GigaTok cards: five 1-D VQ tokenizers (256 tokens, 16384 codes) and eight 1-D GPTs at 256
(spec: shared/specs/gigatok.md).

Not in the published table. The same GPT-B recipe was trained on all five tokenizers: those
five cards form the "GigaTok GPT-B" comparison (the rFID term at a fixed AR model). Fit groups
are per tokenizer (GPT-B/XL/XXL on B-L form one group). Every file is a Google Drive file
linked from the upstream README (no other host).
"""

from ..registry import CheckpointFile, ModelCard, Published, TokenizerCard

_DRIVE = "https://drive.google.com/file/d/{id}/view"
_README_TOK = "GigaTok README (upstream commit 182920c), 'Download Checkpoints' tokenizer table, row {row}"
_README_LARGE = "GigaTok README (upstream commit 182920c), 'Larger AR models' table, row {row}"
_RFID_PROTO = ("ImageNet val 50k, center-cropped to 256, encode + decode from tokens; ADM evaluator against the "
               "256 crops (val_imagenet.npz)")
_LPIPS_PROTO = "VGG LPIPS averaged over the 50k ImageNet val 256 crops (same reconstructions as rFID)"
_GFID_PROTO = ("50k samples at 256, temperature 1, top-k 0, top-p 1, classifier-free guidance with the 'step' "
               "schedule (step-start-ratio 0.18), CFG scale searched per model (not stated per row), ADM "
               "evaluator vs VIRTUAL_imagenet256_labeled.npz; with guidance (no guidance-free FID published)")
COMPARE_GPT_B = "GigaTok GPT-B"  # the same GPT-B recipe trained on each of the five tokenizers


def _file(role: str, filename: str, drive_id: str) -> CheckpointFile:
    return CheckpointFile(role, filename, _DRIVE.format(id=drive_id), "model", repo=f"gdrive:{drive_id}")


def _tok(tid, row, filename, drive_id, params, enc, dec, rfid, lpips, notes="", entropy_loss_ratio=0.0):
    (en, ew, el, eh), (dn, dw, dl, dh) = enc, dec
    return TokenizerCard(
        id=tid,
        family="gigatok",
        params=params,
        codebook_size=16384,
        code_dim=8,
        downsample=16,
        file=_file("tokenizer", filename, drive_id),
        rfid=((256, Published(rfid, _README_TOK.format(row=row), _RFID_PROTO)),),
        lpips=Published(lpips, _README_TOK.format(row=row), _LPIPS_PROTO),
        arch=(("encoder_size", en), ("encoder_width", ew), ("encoder_layers", el), ("encoder_heads", eh),
              ("decoder_size", dn), ("decoder_width", dw), ("decoder_layers", dl), ("decoder_heads", dh),
              ("entropy_loss_ratio", entropy_loss_ratio)),  # a training setting, kept so the config equals the yaml
        notes=("1-D tokenizer: 256 tokens in latent-query (coarse-to-fine) order, CNN grid 16x16. The state dict "
               "also holds the training-only distillation head and the codebook-usage buffer (loaded strictly, "
               "unused). " + notes).strip(),
    )


_SMALL, _BASE = ("small", 512, 6, 8), ("base", 768, 12, 12)
_LARGE, _XL, _XXL = ("large", 1024, 24, 16), ("xl", 1280, 36, 20), ("xxl", 1536, 48, 24)

TOKENIZERS = (
    _tok("gigatok-vq-ss", "S-S", "VQ_SS256_e100.pt", "1Q_WHCT6mdNnu0GkHCm0CbXaP6kFeTe5h", 136_073_227,
         _SMALL, _SMALL, 1.01, 0.2226),
    _tok("gigatok-vq-sb", "S-B", "VQ_SB256_e200.pt", "17K-h2Jwep53RUEf6CEOV3ro7Cz_DaIWC", 232_399_627,
         _SMALL, _BASE, 0.89, 0.2121),
    _tok("gigatok-vq-bl", "B-L", "VQ_BL256_e200.pt", "1VnBu4aj0N7lFa1_wKBdTgLNZmaNgFvwi", 621_637_131,
         _BASE, _LARGE, 0.81, 0.2059),
    _tok("gigatok-vq-bl-dino", "B-L (dino disc)", "VQ_BL256_dino_disc.pt", "11bXyg6y15hIWYnIsl7YbwDtRAJMK7jjn",
         621_637_131, _BASE, _LARGE, 0.51, 0.2056,
         notes="Same architecture as B-L; trained with a DINOv2-based discriminator."),
    _tok("gigatok-vq-xlxxl", "XL-XXL", "VQ_XLXXL256_e300.pt", "1HK_bV_zklLfGmIHGE4gMwjfhLLKi6Z3G", 2_893_970_443,
         _XL, _XXL, 0.79, 0.1947, entropy_loss_ratio=0.005),
)

_GROUP = {"gigatok-vq-ss": "GigaTok S-S", "gigatok-vq-sb": "GigaTok S-B", "gigatok-vq-bl": "GigaTok B-L",
          "gigatok-vq-bl-dino": "GigaTok B-L-dino", "gigatok-vq-xlxxl": "GigaTok XL-XXL"}
_GPT = {"B": (111_085_824, 12, 12, 768), "XL": (775_028_480, 36, 20, 1280), "XXL": (1_411_367_424, 48, 24, 1536)}


def _card(mid, gpt, tok_id, tok_row, filename, drive_id, gfid, source, aliases):
    params, n_layer, n_head, dim = _GPT[gpt]
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
        files=(_file("transformer", filename, drive_id),),
        fid=Published(gfid, source, _GFID_PROTO),
        rfid=tok.rfid[0][1],
        reference_bpp=None,
        aliases=aliases,
        group=_GROUP[tok_id],
        in_published_table=False,
        arch=(("n_layer", n_layer), ("n_head", n_head), ("dim", dim)),
        compare=(COMPARE_GPT_B,) if gpt == "B" else (),
        notes="1-D GPT: LlamaGen's blocks with a learned absolute position table (257 rows) instead of RoPE.",
    )


CARDS = (
    _card("gigatok-b-ss", "B", "gigatok-vq-ss", "S-S", "GPT_B256_e300_VQ_SS.pt", "1VTaBPP-UUE6wc148vQQejfYNVjyYm4IS",
          4.05, _README_TOK.format(row="S-S (GPT-B gFID)"), ("GigaTok GPT-B S-S", "GPT_B256_e300_VQ_SS")),
    _card("gigatok-b-sb", "B", "gigatok-vq-sb", "S-B", "GPT_B256_e300_VQ_SB.pt", "1aeMpU5ybvs0s5wsuhBoTZDhYYc4WHZh7",
          3.83, _README_TOK.format(row="S-B (GPT-B gFID)"), ("GigaTok GPT-B S-B", "GPT_B256_e300_VQ_SB")),
    _card("gigatok-b-bl", "B", "gigatok-vq-bl", "B-L", "GPT_B256_e300_VQ_BL.pt", "1ZiRAk9pHhcrrbVMP1qSf4rDfSJMCsY6Y",
          3.26, _README_TOK.format(row="B-L (GPT-B gFID)"), ("GigaTok GPT-B B-L", "GPT_B256_e300_VQ_BL")),
    _card("gigatok-b-bl-dino", "B", "gigatok-vq-bl-dino", "B-L (dino disc)", "GPT_B256_e300_VQ_BL_dino_disc.pt",
          "1BckVcQ7NPipa8tjAazwBy0usJnO8pdHp", 3.33, _README_TOK.format(row="B-L dino disc (GPT-B gFID)"),
          ("GigaTok GPT-B B-L dino", "GPT_B256_e300_VQ_BL_dino_disc")),
    _card("gigatok-b-xlxxl", "B", "gigatok-vq-xlxxl", "XL-XXL", "GPT_B256_e300_VQ_XLXXL.pt",
          "1zIIy6TVo8WIHiGKFp83CfyFaUytFQ1uR", 3.15, _README_TOK.format(row="XL-XXL (GPT-B gFID)"),
          ("GigaTok GPT-B XL-XXL", "GPT_B256_e300_VQ_XLXXL")),
    _card("gigatok-xl-bl", "XL", "gigatok-vq-bl", "B-L", "GPT_XL256_e300_VQ_BL.pt", "1ABRaQ8h-mv-JE6gHlAnTPUJTlbd25yQt",
          2.13, _README_LARGE.format(row="GPT-XL, B-L tokenizer"), ("GigaTok GPT-XL B-L", "GPT_XL256_e300_VQ_BL")),
    _card("gigatok-xxl-bl", "XXL", "gigatok-vq-bl", "B-L", "GPT_XXL256_e300_VQ_BL.pt",
          "1qC1wkF99IV2cptGR_ALuqqXz0oKBiKp9", 2.03, _README_LARGE.format(row="GPT-XXL, B-L tokenizer"),
          ("GigaTok GPT-XXL B-L", "GPT_XXL256_e300_VQ_BL")),
    _card("gigatok-xxl-xlxxl", "XXL", "gigatok-vq-xlxxl", "XL-XXL", "GPT_XXL256_e300_VQ_XLXXL.pt",
          "1yMPOYx3oR1PZpZynEotQAO720UVxL0iL", 1.98, _README_LARGE.format(row="GPT-XXL, XL-XXL tokenizer"),
          ("GigaTok GPT-XXL XL-XXL", "GPT_XXL256_e300_VQ_XLXXL")),
)
