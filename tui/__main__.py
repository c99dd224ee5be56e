"""Allow ``python -m tui``."""

from tui.cli import main

main()
