"""``python -m bench.profile_child OUT_DIR NAME -m MODULE args...``: run ``python -m MODULE
args...`` with every thread profiled (:class:`bench.scale.ThreadProfiles`), writing
``OUT_DIR/NAME.<thread>.prof`` and ``.txt`` when it ends. For the parts whose measured
process is the real CLI (``headless1024``): the profile is a separate run, never the
measured one (cProfile roughly doubles the CPU)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from bench.scale import ThreadProfiles


def main() -> None:
    """Profile the module run, whatever way it exits."""
    out, name, flag, module, *args = sys.argv[1:]
    if flag != "-m":
        raise SystemExit("usage: python -m bench.profile_child OUT_DIR NAME -m MODULE args...")
    profiles = ThreadProfiles()
    sys.argv = [module, *args]
    profiles.start()
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit:
        pass
    finally:
        for path in profiles.write(Path(out), name):
            print(path, file=sys.stderr)


if __name__ == "__main__":
    main()
