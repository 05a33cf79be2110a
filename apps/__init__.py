"""Apps on top of everything: the gateway, the CLI, replay, evaluation, report, review, export, the dev supervisor.

They start workflows, send updates and signals, read queries and the store; never workflow internals.
"""
