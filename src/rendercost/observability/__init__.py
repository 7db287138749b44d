"""rendercost.observability."""
