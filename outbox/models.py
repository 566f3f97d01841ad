"""Tables of the outbox app (built in a later issue)."""
