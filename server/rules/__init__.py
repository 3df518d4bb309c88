"""Rules: the versioned rules store, document parsing, compiled snapshots and hot reload."""
