"""The HTTP edge: operator API, federation API, live stream (and the console)."""
