"""The registry: model and tokenizer cards (``catalog`` + ``cards/``), checkpoint files (where
they live, download, verified reading) and the one build-and-load path. Imports only core's
shared pieces."""
