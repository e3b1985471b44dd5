"""The eufy-security-ws WebSocket server: sessions, schema negotiation, dispatch, shaping."""

from bridge.server.server import BridgeServer

__all__ = ["BridgeServer"]
