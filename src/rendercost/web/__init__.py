"""rendercost.web."""
