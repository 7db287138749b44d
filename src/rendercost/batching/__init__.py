"""rendercost.batching."""
