"""The read side of the ledger: reports, budgets and their alerts, spend anomalies, the FOCUS export."""
