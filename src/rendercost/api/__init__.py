"""rendercost.api."""
