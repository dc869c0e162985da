"""Case matching: which case an event belongs to (a pure function) and the spatial index behind it."""
