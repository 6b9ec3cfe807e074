"""The `govern` command line."""
