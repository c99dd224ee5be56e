"""tokentop's benchmark suite (issue 6): ``python -m bench`` runs every part and prints a
table of figure, bar, measured value and pass/fail; ``python -m bench PART`` runs one part.

Not part of the test run. Every figure is a ratio measured in the same run (see
``bench/common.py`` and ``bench/RESULTS.md``).
"""

from __future__ import annotations
