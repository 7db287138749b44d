"""The capacity planner: a cost model calibrated on the ledger and a discrete-event replay of the
history through what-if fleets (device, pricing, workers, batching, routing, caches, serverless)."""
