"""tokentop: a terminal dashboard for LLM streams."""

__version__ = "0.1.0"
