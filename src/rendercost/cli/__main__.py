"""``python -m rendercost.cli``: the ``rendercost`` command (how ``worker --devices`` starts its children)."""

from rendercost.cli import main

main()
