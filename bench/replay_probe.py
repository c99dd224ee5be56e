"""``python -m bench.replay_probe OUT tokentop-args...``: run the CLI (``tui.cli.main``) with
those arguments the way a user does, except that Textual runs headless at 200x60, and write
to OUT the ``time.perf_counter()`` at which a replay is on screen: the first frame after the
replay screen has played the whole run and its transcript has nothing left to render. Then
exit at once (tearing down is not what a user waits for). With ``TOKENTOP_BENCH_PROFILE=DIR``
the process is profiled until then, or for its first minute (``DIR/million-replay.*``; not a
measured run).

``time.perf_counter()`` is ``CLOCK_MONOTONIC`` on Linux, so the parent can compare it with
the time it spawned this process.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from textual.app import App

PROFILE_ENV = "TOKENTOP_BENCH_PROFILE"
PROFILE_LIMIT_S = 60.0
"""A profiled replay (several times slower) stops after this long, its profile written."""


def _install(out: str) -> None:
    from tui.ui.screens.replay import ReplayScreen
    from tui.ui.widgets.transcript import TranscriptView

    run = App.run
    display = App._display
    waiting = False

    def headless_run(self: App[Any], *args: Any, **kwargs: Any) -> Any:
        kwargs.update(headless=True, size=(200, 60))
        return run(self, *args, **kwargs)

    started = time.perf_counter()
    profiles = None
    if os.environ.get(PROFILE_ENV):
        from bench.scale import ThreadProfiles

        profiles = ThreadProfiles()
        profiles.start()

    def painted() -> None:
        with open(out, "w") as f:
            f.write(repr(time.perf_counter()))
        if profiles is not None:
            profiles.write(Path(os.environ[PROFILE_ENV]), "million-replay")
        os._exit(0)

    def probe_display(self: App[Any], screen: Any, renderable: Any) -> None:
        nonlocal waiting
        display(self, screen, renderable)
        if profiles is not None and time.perf_counter() - started > PROFILE_LIMIT_S:
            # a profile of the first minute says where the time goes; exit without a time
            profiles.write(Path(os.environ[PROFILE_ENV]), "million-replay")
            os._exit(3)
        if waiting or renderable is None or not isinstance(screen, ReplayScreen):
            return
        if (screen.done or screen.error) and not screen.query_one(TranscriptView).has_pending:
            waiting = True
            self.call_after_refresh(painted)

    App.run = headless_run  # type: ignore[method-assign]
    App._display = probe_display  # type: ignore[method-assign]


def main() -> None:
    """Install the probe, then run the CLI on the remaining arguments."""
    out, args = sys.argv[1], sys.argv[2:]
    _install(out)
    from tui.cli import main as cli

    sys.argv = ["tokentop", *args]
    cli()


if __name__ == "__main__":
    main()
