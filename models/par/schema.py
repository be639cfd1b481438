"""The PAR ``config.json`` schema: LlamaGen's plus PAR's GPT arguments (upstream names) and the
fixture's order/statistics sections (see ``visbpp.core.registry.config_schema``)."""

from ..llamagen.schema import SCHEMA as _LLAMAGEN

SCHEMA = {
    **_LLAMAGEN,
    "order": "free", "stats": "free", "labels": "any", "raw_hw": "any", "codebook_margin_target": "any",
    "containers_note": "any",
    "transformer": {
        **_LLAMAGEN["transformer"],
        "ar_token_num": "int>0", "spe_token_num": "int>=0",
        "caption_dim": "int>0", "max_batch_size": "int>0", "max_seq_len": "int>0",  # upstream, unused for c2i
    },
}
