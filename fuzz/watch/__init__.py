"""Watchers: what the kernel and /proc show about the bus and the clients while a run goes on."""
