"""Pure domain code below the policy engine: text utilities, the rule scorer, the deterministic handoff note.

No I/O, no clock, no randomness: it runs inside workflow code and in plain unit tests.
"""
