"""The `sovereign` command line."""
