"""SQLite history, atomic file writes, PNG metadata, AI-content disclosure."""
