"""rendercost.ledger."""
