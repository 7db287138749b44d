"""rendercost.caches."""
