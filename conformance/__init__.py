"""A conformance suite for eufy-security-ws compatible servers.

``python -m conformance ws://host:port [--report FILE] [--writes]`` checks a running server
against the protocol catalog (``schemas/catalog.yaml``): the hello, schema negotiation, gating
of every command at the edges of its schema range, error codes, result shapes, the
``start_listening`` state and the shapes of the events it can trigger.  It talks to the server
only over its WebSocket, so it can check any implementation.
"""
