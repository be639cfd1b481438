"""Analysis of stored measurements: the merged table, fits (OLS, ANCOVA, linear vs bilinear), the
paper's tests, fine-tune comparisons, per-token breakdowns, inspection, reports and plots. Reads
the store and the registry; never imports the engine."""
