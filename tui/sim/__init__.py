"""The built-in OpenAI-compatible streaming simulator (a real HTTP server)."""
