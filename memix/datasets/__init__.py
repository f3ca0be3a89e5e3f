"""Dataset adapters: each reads one dataset's layout and coding sheet into the clip index (see schema)."""
