"""The demo world: three simulators seeded with a realistic small month, and returnsync on top."""
