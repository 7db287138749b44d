"""rendercost: a text-to-image server that knows what every render costs and drives that cost down."""

__version__ = "0.1.0"
