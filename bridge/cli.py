"""The ``eufy-bridge`` command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from bridge import __version__, logs
from bridge.settings import ConfigError, has_configuration, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eufy-bridge",
        description="Serve SkyBell and DoorBird doorbells to eufy-security-ws clients.",
    )
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="YAML or JSON configuration file (or $EUFY_BRIDGE_CONFIG)")
    parser.add_argument("--host", help="address to listen on (server.host)")
    parser.add_argument("--port", type=int, help="port to listen on (server.port)")
    parser.add_argument("--log-level", choices=logs.LEVELS, help="log level (log.level)")
    parser.add_argument("--log-format", choices=("console", "json"),
                        help="log format (log.format)")
    parser.add_argument("--data-dir", type=Path, help="state directory (server.data_dir)")
    parser.add_argument("--demo", action="store_true",
                        help="run against built-in simulators (the default without any "
                             "configuration)")
    parser.add_argument("--visitors", type=float, default=60.0, metavar="SECONDS",
                        help="demo mode: a simulated visitor about every SECONDS (0: none)")
    parser.add_argument("--check-config", type=Path, metavar="FILE",
                        help="validate FILE, try each backend once, print what it found")
    parser.add_argument("--version", action="version", version=f"eufy-bridge {__version__}")
    from bridge.simulators import cli as simulators

    simulators.add_parser(parser.add_subparsers(dest="command", metavar="COMMAND"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "simulate":
        from bridge.simulators import cli as simulators

        logs.configure(args.log_level or "info", args.log_format or "console")
        return simulators.run(args)
    if args.check_config is not None:
        args.config = args.check_config
    elif args.config is None and os.environ.get("EUFY_BRIDGE_CONFIG"):
        args.config = Path(os.environ["EUFY_BRIDGE_CONFIG"])
    try:
        settings = load_settings(
            args.config,
            **{
                "server.host": args.host,
                "server.port": args.port,
                "log.level": args.log_level,
                "log.format": args.log_format,
                "server.data_dir": args.data_dir,
            },
        )
    except ConfigError as exc:
        print(f"eufy-bridge: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log.level, settings.log.format)

    from bridge.app import Bridge

    if args.check_config is not None:
        from bridge.checks import check_configuration

        return asyncio.run(check_configuration(settings))
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    if args.demo or not has_configuration(args.config):
        from bridge.demo import run_demo

        main_task = run_demo(settings, args.visitors)
    else:
        try:
            main_task = Bridge(settings).run()
        except ConfigError as exc:
            print(f"eufy-bridge: {exc}", file=sys.stderr)
            return 2
    try:
        runner(main_task)
    except OSError as exc:
        print(f"eufy-bridge: cannot listen on {settings.server.host}:"
              f"{settings.server.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0
