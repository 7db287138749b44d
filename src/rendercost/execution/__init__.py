"""The only package that imports torch and diffusers: runner, model registry, LoRAs, tiny model."""
