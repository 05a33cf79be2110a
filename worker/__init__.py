"""Worker wiring: client, data converter, worker options, shutdown."""
