"""The transcript store: SQLite via aiosqlite."""
