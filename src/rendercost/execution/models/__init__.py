"""Models: the registry (loaded once, kept warm), LoRAs, sources, fingerprints, the tiny model."""
