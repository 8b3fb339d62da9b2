"""`envnet sim devices`: byte-level device simulators on pseudo-terminals, until SIGTERM.

Prints one "name path" line per device on stdout once all are serving, optionally writes the
same as JSON and/or stable symlinks, and runs until SIGTERM, SIGINT or --duration.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from envnet.argtypes import non_negative_float


def add_devices_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="devices.toml")
    parser.add_argument(
        "--paths-json", type=Path, default=None, help="also write {name: device path} here"
    )
    parser.add_argument(
        "--link-dir",
        type=Path,
        default=None,
        help="also create DIR/<name> symlinks to the device paths (removed at exit)",
    )
    parser.add_argument(
        "--duration", type=non_negative_float, default=None, help="stop after N seconds"
    )


def run_devices_command(args: argparse.Namespace) -> int:
    from schemas.runtime.logs import get_logger
    from simulators.devices import DeviceSet, load_devices_config, write_paths_json

    log = get_logger("simulators.devices")
    config = load_devices_config(args.config)
    devices = DeviceSet(config)
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        paths = devices.start()
        if args.link_dir is not None:
            devices.link(args.link_dir)
        for name, path in paths.items():
            sys.stdout.write(f"{name} {path}\n")
        sys.stdout.flush()
        if args.paths_json is not None:
            write_paths_json(paths, args.paths_json)
        log.info("devices_running", devices=len(paths))
        stop.wait(args.duration)
    finally:
        devices.close()
        for sig, old_handler in previous.items():
            signal.signal(sig, old_handler)
    log.info("devices_stopped")
    return 0
