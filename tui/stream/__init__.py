"""Headless stream engine: SSE decoding, both API adapters, the runner and metrics."""
