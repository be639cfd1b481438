"""The results store: per-run state and outputs, the token cache, per-token NLL files, and the
runs listing with its one selection rule. Imports the registry and core's shared pieces only."""
