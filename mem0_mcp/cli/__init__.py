"""The command line: serve, and the tools a person uses on a data dir."""
