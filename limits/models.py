"""Tables of the limits app (built in a later issue)."""
