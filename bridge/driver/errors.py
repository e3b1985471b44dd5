"""Typed errors that backends and the driver raise; each carries its eufy error code.

The server turns any :class:`BridgeError` into a failed result with ``code``; anything else that
escapes a handler is a true surprise and becomes ``unknown_error`` with a logged traceback.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every error that maps to a eufy-security-ws error code."""

    code = "unknown_error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.code)
        self.detail = detail


class UnknownCommand(BridgeError):
    code = "unknown_command"


class SchemaIncompatible(BridgeError):
    code = "schema_incompatible"


class InvalidCommandValue(BridgeError):
    code = "device_invalid_command_value"


class StationNotFound(BridgeError):
    code = "station_not_found"


class StationNotConnected(BridgeError):
    code = "station_not_connected"


class StationConnectionTimeout(BridgeError):
    code = "station_connection_timeout"


class DeviceNotFound(BridgeError):
    code = "device_not_found"


class InvalidProperty(BridgeError):
    code = "device_invalid_property"


class InvalidPropertyValue(BridgeError):
    code = "device_invalid_property_value"


class PropertyNotSupported(BridgeError):
    code = "device_property_not_supported"


class PropertyReadonly(BridgeError):
    code = "device_property_readonly"


class NotSupported(BridgeError):
    code = "device_not_supported"


class LivestreamAlreadyRunning(BridgeError):
    code = "device_livestream_already_running"


class LivestreamNotRunning(BridgeError):
    code = "device_livestream_not_running"


class DownloadAlreadyRunning(BridgeError):
    code = "device_download_already_running"


class DownloadNotRunning(BridgeError):
    code = "device_download_not_running"


class OnlyOneDownloadAtATime(BridgeError):
    code = "device_only_one_download_at_a_time"


class TalkbackAlreadyRunning(BridgeError):
    code = "device_talkback_already_running"


class TalkbackNotRunning(BridgeError):
    code = "device_talkback_not_running"


class OnlyOneTalkbackAtATime(BridgeError):
    code = "device_only_one_talkback_at_a_time"


class RtspPropertyNotEnabled(BridgeError):
    code = "device_rtsp_property_not_enabled"
