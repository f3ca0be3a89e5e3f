"""memix."""
