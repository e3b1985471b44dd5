"""``eufy-bridge simulate ...``: run a simulator alone, in the foreground, until a signal."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import structlog

from bridge.simulators.doorbird import DoorBirdConfig, DoorBirdSimulator
from bridge.simulators.faults import parse_cli
from bridge.simulators.skybell import CloudConfig, SkyBellSimulator

log = structlog.get_logger(component="simulator")


def add_parser(subparsers: Any) -> None:
    simulate = subparsers.add_parser("simulate", help="run a device simulator alone")
    vendors = simulate.add_subparsers(dest="vendor", required=True)

    doorbird = vendors.add_parser("doorbird", help="a DoorBird door station (LAN API)")
    defaults = DoorBirdConfig()
    doorbird.add_argument("--http-port", type=int, required=True, help="HTTP API port")
    doorbird.add_argument("--host", default="127.0.0.1", help="address to listen on")
    doorbird.add_argument("--user", default=defaults.user)
    doorbird.add_argument("--password", default=defaults.password)
    doorbird.add_argument("--notification-key", help="NOTIFICATION_ENCRYPTION_KEY (32-64 "
                          "characters; random by default)")
    doorbird.add_argument("--event-port", type=int, action="append", dest="event_ports",
                          help="UDP event port (repeatable; default 6524 and 35344)")
    doorbird.add_argument("--event-host", default="127.0.0.1",
                          help="where UDP event packets go (a broadcast address works)")
    doorbird.add_argument("--relays", default="1,2", help="relays, e.g. 1,2,gggaaa@1")
    doorbird.add_argument("--device-type", default=defaults.device_type)
    doorbird.add_argument("--mac", default=defaults.mac, help="PRIMARY_MAC_ADDR")
    doorbird.add_argument("--udp-version", type=int, choices=(1, 2), default=2)
    doorbird.add_argument("--no-watch-always", action="store_true",
                          help="live view only within 5 minutes of a ring")
    doorbird.add_argument("--visitors", type=float, metavar="SECONDS",
                          help="a random ring or motion about every SECONDS")
    doorbird.add_argument("--rtsp-port", type=_port_or_none, default=defaults.rtsp_port,
                          metavar="PORT", help="RTSP port (default %(default)s; 0: any free "
                          "port; none: no RTSP); a port that cannot be bound gives way to a "
                          "free one")
    doorbird.add_argument("--buttons", type=_positive, default=defaults.buttons,
                          help="call buttons (default %(default)s)")

    skybell = vendors.add_parser("skybell", help="the SkyBell cloud (API v5)")
    cloud = CloudConfig()
    skybell.add_argument("--port", type=int, required=True, help="HTTP API port")
    skybell.add_argument("--host", default="127.0.0.1", help="address to listen on")
    skybell.add_argument("--api-key", help="personal API key (random by default; printed)")
    skybell.add_argument("--email", default=cloud.email)
    skybell.add_argument("--password", default=cloud.password)
    skybell.add_argument("--devices", type=int, default=cloud.devices,
                         help="doorbells on the account; doorbell N sends from 127.0.0.N")
    skybell.add_argument("--udp-port", type=int, default=cloud.udp_port,
                         help="where LAN packets go (0: none)")
    skybell.add_argument("--udp-host", default=cloud.udp_host)
    skybell.add_argument("--visitors", type=float, metavar="SECONDS",
                         help="a random ring or motion about every SECONDS")
    for vendor in (doorbird, skybell):
        vendor.add_argument("--fault", action="append", default=[], metavar="NAME[=VALUE]",
                            help="start with this fault on (see POST /_sim/faults)")


def _port_or_none(text: str) -> int | None:
    if text.lower() == "none":
        return None
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError("a port is 0..65535, or none")
    return port


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return number


def doorbird_config(args: argparse.Namespace) -> DoorBirdConfig:
    """The simulated station the ``simulate doorbird`` options describe."""
    config = DoorBirdConfig(
        host=args.host, http_port=args.http_port, user=args.user, password=args.password,
        event_host=args.event_host, relays=[r for r in args.relays.split(",") if r],
        device_type=args.device_type, mac=args.mac, udp_version=args.udp_version,
        watch_always=not args.no_watch_always, visitors=args.visitors,
        rtsp_port=args.rtsp_port, buttons=args.buttons,
    )
    if args.notification_key:
        config.notification_key = args.notification_key
    if args.event_ports:
        config.event_ports = args.event_ports
    return config


def run(args: argparse.Namespace) -> int:
    if args.vendor == "doorbird":
        return asyncio.run(_serve(DoorBirdSimulator(doorbird_config(args)), args.fault))
    if args.vendor == "skybell":
        cloud = CloudConfig(host=args.host, port=args.port, api_key=args.api_key,
                            email=args.email, password=args.password, devices=args.devices,
                            udp_host=args.udp_host, udp_port=args.udp_port,
                            visitors=args.visitors)
        return asyncio.run(_serve(SkyBellSimulator(cloud), args.fault))
    raise SystemExit(f"no simulator for {args.vendor}")


async def _serve(simulator: Any, faults: list[str]) -> int:
    try:
        simulator.faults.update(parse_cli(faults))
    except ValueError as exc:
        raise SystemExit(f"--fault: {exc}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await simulator.start()
    print(f"simulator ready at {simulator.url}", flush=True)
    for line in simulator.describe():
        print(f"  {line}", flush=True)
    await stop.wait()
    await simulator.stop()
    return 0
