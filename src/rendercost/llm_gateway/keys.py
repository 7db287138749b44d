"""Weighted API keys of one provider, named by environment variable (keys never live in files).

``pick()`` draws a usable key at random in proportion to its weight; a key answered 429 cools down for
its Retry-After (so the next pick rotates to another key); a key answered 401/403 is dead for good.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass
class _Key:
    env: str  # the environment variable it came from (what logs and errors name; never the secret)
    secret: str
    weight: float
    dead: bool = False
    cooling_until: float = 0.0


class KeyRing:
    """Thread-safe; ``clock`` and ``rng`` are injectable."""

    def __init__(
        self,
        weighted_env: Mapping[str, float],
        *,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self._keys = [
            _Key(name, env[name], float(weight)) for name, weight in weighted_env.items() if env.get(name)
        ]
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311  spreads load over keys, not security
        self._lock = threading.Lock()

    def pick(self) -> tuple[str, str] | None:
        """``(env name, secret)`` of a live key not cooling down (weighted), or None."""
        with self._lock:
            now = self._clock()
            usable = [k for k in self._keys if not k.dead and k.cooling_until <= now and k.weight > 0]
            if not usable:
                return None
            chosen = self._rng.choices(usable, weights=[k.weight for k in usable])[0]
            return chosen.env, chosen.secret

    def cool(self, env: str, seconds: float) -> None:
        """Rest this key (a 429) for ``seconds``."""
        with self._lock:
            for key in self._keys:
                if key.env == env:
                    key.cooling_until = self._clock() + seconds

    def kill(self, env: str) -> None:
        """Never use this key again (a 401/403)."""
        with self._lock:
            for key in self._keys:
                if key.env == env:
                    key.dead = True

    def live(self) -> list[str]:
        """Env names of keys not dead (cooling or not)."""
        with self._lock:
            return [k.env for k in self._keys if not k.dead]

    def next_ready_in(self) -> float | None:
        """Seconds until some live key stops cooling (0 if one is ready); None when all are dead."""
        with self._lock:
            now = self._clock()
            waits = [max(0.0, k.cooling_until - now) for k in self._keys if not k.dead]
            return min(waits) if waits else None
