"""The run pipeline: data and preprocessing, run identity, the finished-run check, the encode pass,
the scoring loop, reconstructions, progress events and the device runtime. ``entry.score`` is how
the front-ends run it (``runner.run`` when the run is not found finished without torch); nothing
here is imported by the analysis room."""
