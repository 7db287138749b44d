"""rendercost.planner."""
