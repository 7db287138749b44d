"""rendercost.llm_gateway."""
