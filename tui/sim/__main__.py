"""``python -m tui.sim``: the simulator as the child process of :mod:`tui.sim.process`
(``tokentop sim`` is the standalone, foreground one)."""

from __future__ import annotations

import sys

from tui.sim.child import run_child

if __name__ == "__main__":
    raise SystemExit(run_child(sys.argv[1:]))
