"""Every side effect Baton has lives in an activity here."""
