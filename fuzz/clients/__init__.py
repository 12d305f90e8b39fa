"""Client agents: separate OS processes, one role each, each writing its own journal."""
