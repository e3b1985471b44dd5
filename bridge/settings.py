"""The one settings model: a YAML (or JSON) file, overridden by ``EUFY_BRIDGE_*`` variables,
overridden by command-line flags.

Each key can come from the environment as ``EUFY_BRIDGE_<SECTION>__<KEY>`` (for example
``EUFY_BRIDGE_SERVER__PORT=3001``); list sections take JSON (``EUFY_BRIDGE_DOORBIRD='[...]'``).
Secrets are ``SecretStr``: they print as ``**********`` wherever a setting is shown or logged.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bridge.logs import LEVELS

ENV_PREFIX = "EUFY_BRIDGE_"

LogLevel = Literal["silly", "trace", "debug", "info", "warn", "error", "fatal"]
assert LogLevel.__args__ == LEVELS  # type: ignore[attr-defined]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\.?")
_ORIGIN = re.compile(r"https?://(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?/?")


def _default_data_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "eufy-bridge"


class ServerSettings(_Section):
    host: str = Field("127.0.0.1", description="Address the WebSocket server binds to.")
    port: int = Field(3000, ge=0, le=65535, description="TCP port (0 picks a free one).")
    command_timeout: float = Field(
        15.0, gt=0, le=600, description="Longest a command may wait for a backend, in seconds."
    )
    ping_interval: float = Field(30.0, gt=0, description="Seconds between keep-alive pings.")
    ping_timeout: float = Field(30.0, gt=0, description="Seconds to wait for a pong.")
    event_seconds: float = Field(
        5.0, gt=0, le=3600, description="How long ring, motion and person pulses stay on."
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where tokens and event cursors are kept.",
        json_schema_extra={"shown_default": "$XDG_STATE_HOME/eufy-bridge"},
    )
    send_buffer_limit: int = Field(
        16 * 1024 * 1024,
        ge=64 * 1024,
        description="Bytes waiting for a slow client before its events are dropped.",
    )
    max_connections: int = Field(
        256, ge=1, description="Open connections at most; the next one is answered 503."
    )
    max_message_size: int = Field(
        1024 * 1024,
        ge=1024,
        description="Largest message a client may send, in bytes (larger closes with 1009).",
    )
    max_in_flight: int = Field(
        64, ge=1, le=10000,
        description="Commands one connection may have waiting for a backend; its further "
        "messages are read when one ends.",
    )
    auth_token: SecretStr | None = Field(
        None,
        description="Token clients must present (Authorization: Bearer, or ?token=). "
        "Set it whenever host is not loopback.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the page may be opened by, besides IP addresses and localhost.",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Other web origins (scheme://host[:port]) allowed to connect.",
    )
    tls_cert: FilePath | None = Field(
        None, description="PEM certificate (chain) to serve wss:// and https:// instead."
    )
    tls_key: FilePath | None = Field(None, description="PEM private key of tls_cert.")

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _HOST_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a host name")
        return [name.lower().rstrip(".") for name in names]

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an origin like https://host[:port]")
        return [origin.lower().rstrip("/") for origin in origins]

    @model_validator(mode="after")
    def _tls_needs_both(self) -> ServerSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self


class LogSettings(_Section):
    level: LogLevel = Field("info", description="One of silly, trace, debug, info, warn, "
                                                "error, fatal.")
    format: Literal["console", "json"] = Field("console", description="console or json.")


class MediaSettings(_Section):
    rtsp: bool = Field(True, description="Serve every camera over RTSP at "
                       "rtsp://advertised_host:rtsp_port/SERIAL (the server's token as password).")
    rtsp_port: int = Field(8554, ge=0, le=65535, description="RTSP port (0 picks a free one).")
    rtsp_host: str | None = Field(
        None, description="Address the RTSP server binds to (default: server.host).")
    advertised_host: str | None = Field(
        None, description="Host name or address in the RTSP URLs handed to clients (default: "
        "the RTSP server's address, or this machine's primary address when that is 0.0.0.0).")


class DoorBirdSettings(_Section):
    host: str = Field(description='"ip" or "ip:port" of the door station.')
    username: str = Field(description="A DoorBird user with API rights.")
    password: SecretStr = Field(description="That user's password.")
    name: str | None = Field(None, description="Name shown in clients (default: the model).")
    event_ports: list[int] = Field(
        default_factory=lambda: [6524, 35344], description="UDP ports the station sends to."
    )
    events: Literal["udp", "monitor", "http"] = Field(
        "udp", description="udp (falls back to monitor), monitor, or http."
    )
    listen_host: str = Field(
        "0.0.0.0", description="Address the UDP event ports bind to (broadcasts need 0.0.0.0)."
    )
    accept_events_from_any: bool = Field(
        False, description="Take event packets from any sender, not only from host (for NAT)."
    )
    relay_seconds: float = Field(
        5.0, gt=0, le=600, description="Seconds a relay reports unlocked after opening."
    )
    callback_url: str | None = Field(
        None, description='events "http": the bridge\'s URL as the station can reach it.'
    )
    rtsp_port: int | None = Field(
        554, ge=1, le=65535,
        description="The station's RTSP port for live H.264 (none: MJPEG from video.cgi).",
    )
    video_path: str | None = Field(
        None, description="RTSP path of the live view (default: /mpeg/720p/media.amp on D21x "
        "from firmware 129, else /mpeg/media.amp).",
    )
    hand_out_station_rtsp: bool = Field(
        False, description="Give clients the station's own RTSP URL instead of the bridge's "
        "(it carries a session id that opens the door; each player takes a stream slot).",
    )

    @model_validator(mode="after")
    def _http_events_need_a_callback(self) -> DoorBirdSettings:
        if self.events == "http" and not self.callback_url:
            raise ValueError('events "http" needs callback_url (e.g. http://192.0.2.5:3000)')
        return self


class SkyBellSettings(_Section):
    api_key: SecretStr | None = Field(None, description="A personal SkyBell API key.")
    email: str | None = Field(None, description="Account e-mail (instead of api_key).")
    password: SecretStr | None = Field(None, description="Account password (with email).")
    base_url: str = Field("https://api.skybell.network", description="The cloud API.")
    poll_interval: float = Field(30.0, gt=0, description="Seconds between activity polls.")
    udp_port: int = Field(5000, ge=0, le=65535, description="LAN event port (0: off).")
    udp_listen: str = Field("0.0.0.0", description="Address the LAN event port binds to.")
    webhook_url: str | None = Field(None, description="Public URL of the webhook receiver.")
    webhook_listen: str | None = Field(None, description='"host:port" the receiver binds.')
    event_seconds: float | None = Field(
        None, gt=0, le=3600, description="Pulse length for this account (default: server's)."
    )
    live_stall_seconds: float = Field(
        10.0, gt=0, le=300, description="A live view with no picture for this long ends."
    )

    @model_validator(mode="after")
    def _credentials(self) -> SkyBellSettings:
        if self.api_key is None and not (self.email and self.password):
            raise ValueError("give api_key, or email and password")
        return self


_FILE_DATA: ContextVar[dict[str, Any] | None] = ContextVar("eufy_bridge_file", default=None)


class _FileSource(PydanticBaseSettingsSource):
    """Values read from the configuration file (already parsed by :func:`load_settings`)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return (_FILE_DATA.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_FILE_DATA.get() or {})


class Settings(BaseSettings):
    """Everything the bridge can be told."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid"
    )

    server: ServerSettings = Field(default_factory=ServerSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    doorbird: list[DoorBirdSettings] = Field(default_factory=list)
    skybell: list[SkyBellSettings] = Field(default_factory=list)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _FileSource(settings_cls)


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file, key and problem."""


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read the file (if any), the environment and the ``overrides`` (from flags)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(_describe_yaml_error(exc, path)) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        data = loaded
    init = _nest(overrides)
    token = _FILE_DATA.set(data)
    try:
        return Settings(**init)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    finally:
        _FILE_DATA.reset(token)


def has_configuration(path: Path | None) -> bool:
    """Whether the user configured anything at all (a file or an EUFY_BRIDGE_ variable)."""
    return path is not None or any(k.startswith(ENV_PREFIX) for k in os.environ)


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"server.port": 1}`` to ``{"server": {"port": 1}}``, skipping unset flags."""
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        if value is None:
            continue
        section, key = dotted.split(".", 1)
        out.setdefault(section, {})[key] = value
    return out


def _describe_yaml_error(exc: yaml.YAMLError, path: Path) -> str:
    """Where the file stops being YAML and why, never the offending line (yaml's own message
    quotes it, and it may hold a password); quoted text from the file is elided too."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f"{path}: not valid YAML or JSON"
    mark = exc.problem_mark
    problem = re.sub(r"'[^'<][^']{2,}'", "'...'", exc.problem or "syntax error")
    context = f" ({exc.context})" if exc.context else ""
    return (f"{path}: not valid YAML or JSON at line {mark.line + 1}, column {mark.column + 1}:"
            f" {problem}{context}")


def _describe(exc: ValidationError, path: Path | None) -> str:
    where = f"{path}: " if path else ""
    lines = []
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"]) or "(top level)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{where}{key}: {message}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def reference_table() -> str:
    """The README's configuration reference, generated from this model."""
    rows = ["| Key | Default | Meaning |", "| --- | --- | --- |"]
    for section, field in Settings.model_fields.items():
        model = _section_model(field.annotation)
        listed = "[]" if field.annotation is not model else ""
        for key, info in model.model_fields.items():
            shown = (info.json_schema_extra or {}).get("shown_default")  # type: ignore[union-attr]
            if shown:
                default = f"`{shown}`"
            elif info.is_required():
                default = "required"
            elif info.default_factory is not None:
                default = f"`{info.default_factory()}`"  # type: ignore[call-arg]
            else:
                default = f"`{info.default}`" if info.default is not None else "-"
            env = f"{ENV_PREFIX}{section.upper()}__{key.upper()}"
            where = f"`{section}{listed}.{key}`" + ("" if listed else f"<br>`{env}`")
            rows.append(f"| {where} | {default} | {info.description or ''} |")
    return "\n".join(rows) + "\n"


def _section_model(annotation: Any) -> type[BaseModel]:
    args = getattr(annotation, "__args__", None)
    return args[0] if args else annotation
