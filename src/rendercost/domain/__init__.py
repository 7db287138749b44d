"""Pure types shared by every layer. Imports nothing from rendercost except ``errors``."""
