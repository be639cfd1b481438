"""The run pipeline: data and preprocessing, run identity, the finished-run check, the encode pass,
the scoring loop, reconstructions, progress events and the device runtime. ``runner.run`` is the
entry point; nothing here is imported by the analysis room."""
