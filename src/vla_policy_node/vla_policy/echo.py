"""Log lines that echo user input: truncated, and throttled by a clock the caller passes in.

Why: anyone on the graph can publish an instruction or call a service, so a log line that repeats
their text must not let them flood the log (280 instructions in 3 s gave 266 INFO lines) or write
100 kB lines. `clip` bounds one line; `Throttle` bounds the rate and counts what it dropped, so
the next line that does go out says how many were suppressed. The clock is injected (no
`time.monotonic()` inside), so tests drive it with fake times.
"""

from __future__ import annotations

#: Longest piece of user text repeated in one log line (characters).
MAX_ECHO_CHARS = 80


def clip(text: object, limit: int = MAX_ECHO_CHARS) -> str:
    """`repr(text)` cut to about `limit` characters, saying how long the original was."""
    text = str(text)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} chars)"


def shorten(text: object, limit: int = 300) -> str:
    """`str(text)` on one line, cut to about `limit` characters (for reasons and error messages
    that may embed user input)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


class Throttle:
    """At most one event per `period_s` passes; the others are counted."""

    def __init__(self, period_s: float = 1.0) -> None:
        self.period_s = period_s
        self._last = -float("inf")
        self.suppressed = 0

    def ready(self, now_s: float) -> bool:
        """True (and the window restarts) when an event may be logged at `now_s`."""
        if now_s - self._last < self.period_s:
            self.suppressed += 1
            return False
        self._last = now_s
        return True

    def note(self) -> str:
        """" (N more suppressed)" for the line that passes after suppressed ones; resets the count."""
        n, self.suppressed = self.suppressed, 0
        return f" ({n} similar lines suppressed)" if n else ""
