"""For tests and benchmarks, never used by the server: one fake runner and one wait-for-job helper.

``runner.FakeRunner`` stands in for the diffusers runner at its one seam (``domain.runner.Runner``) and
answers with real PNG/WebP/JPEG bytes; ``runner.TimedRunner`` wraps a real runner to time its calls;
``waiting.wait_until`` / ``waiting.wait_for_job`` poll with a deadline and fail naming what they waited
for. This package imports only ``domain``, ``errors``, the standard library and PIL.
"""
