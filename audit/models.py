"""Tables of the audit app (built in a later issue)."""
