"""The engine's fixed numbers and texts, one home each (no torch, no other engine module)."""

CPU_AUTO_BATCH = 16      # --batch-size auto on the CPU (no out-of-memory signal to back off from)
GPU_AUTO_START = 512     # first candidate of --batch-size auto on CUDA/MPS (halved on out of memory)
GPU_ENCODE_BATCH = 64    # images per encode/reconstruction batch on CUDA/MPS with --batch-size auto
NO_LABEL = "no label in the CSV"   # skip reason of a flat-layout file without a labels-CSV row
