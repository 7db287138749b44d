"""The diffusers pipeline: one ``BatchPlan`` in, images and per-stage device seconds out."""
