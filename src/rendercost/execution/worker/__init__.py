"""The worker: claim + plan -> run -> settle, one loop per device (``loop.Worker``)."""
