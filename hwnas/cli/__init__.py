"""The `hwnas` command line; nothing imports it."""
