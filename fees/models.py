"""Tables of the fees app (built in a later issue)."""
