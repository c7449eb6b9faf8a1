"""``consentry-agent``: the reference capture agent for X11.

    consentry-agent --server https://consentry.example.com --token-file ~/.consentry-token \\
        --device-id laptop-7 --spool ~/consentry-spool

Captures keyboard, mouse, screenshots and the focused application, each only
while the current grant allows it and carries its data key, into a JSON Lines
spool of encrypted records; prints its state
on every change and keeps it in ``status.json``. Stops on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from consentry_client.agent.agent import CATEGORIES, Agent
from consentry_client.agent.sink import EncryptingSink, JsonlSpool
from consentry_client.agent.status import StatusReporter
from consentry_client.agent.x11 import WindowProbe, load_app_map
from consentry_client.capture import CaptureGate
from consentry_client.transport import Transport


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="consentry-agent", description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.environ.get("CONSENTRY_URL"), help="Consentry base URL")
    parser.add_argument("--token-file", help="file holding the device token (or CONSENTRY_DEVICE_TOKEN)")
    parser.add_argument("--device-id", default=os.environ.get("CONSENTRY_DEVICE_ID"), help="the token's device id")
    parser.add_argument("--purpose", default="ai_agent_training")
    parser.add_argument("--categories", default=",".join(CATEGORIES), help="comma-separated categories to capture")
    parser.add_argument("--spool", default="consentry-spool", help="folder for records (JSON Lines) and blobs")
    parser.add_argument("--status-file", help="where to keep the status (default: <spool>/status.json)")
    parser.add_argument("--screenshot-interval", type=float, default=10.0, help="seconds between screenshots")
    parser.add_argument("--app-map", help="JSON file mapping WM_CLASS names to application ids")
    parser.add_argument("--display", default=os.environ.get("DISPLAY"), help="X display (default: $DISPLAY)")
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="an extra HTTP header for every request (say, one a gateway in between expects); repeatable",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if not args.server or not args.device_id:
        parser.error("--server and --device-id are required (or CONSENTRY_URL and CONSENTRY_DEVICE_ID)")
    if not args.display:
        parser.error("no X display: set DISPLAY or pass --display")
    return args


def _token(args: argparse.Namespace) -> str:
    if args.token_file:
        return Path(args.token_file).read_text().strip()
    token = os.environ.get("CONSENTRY_DEVICE_TOKEN", "").strip()
    if not token:
        sys.exit("consentry-agent: no device token (--token-file or CONSENTRY_DEVICE_TOKEN)")
    return token


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(message)s")
    categories = tuple(category.strip() for category in args.categories.split(",") if category.strip())
    spool = Path(args.spool)
    spool.mkdir(parents=True, exist_ok=True)
    token = _token(args)
    headers = dict(header.split(":", 1) for header in args.header if ":" in header)
    gate = CaptureGate(
        args.server,
        token,
        device_id=args.device_id,
        purpose=args.purpose,
        categories=categories,
        transport=Transport(args.server, token, headers={k.strip(): v.strip() for k, v in headers.items()}),
    )
    agent = Agent(
        gate,
        EncryptingSink(JsonlSpool(spool)),
        WindowProbe(args.display, load_app_map(args.app_map)),
        categories=categories,
        screenshot_interval=args.screenshot_interval,
    )
    reporter = StatusReporter(gate, args.status_file or spool / "status.json")
    gate.on_change(reporter.update)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    reporter.update()
    agent.start()
    # The status file also carries the counts, refreshed every second.
    while not stopping.wait(1.0):
        reporter.extra = {
            "records": dict(agent.counts),
            "not_captured_without_key": dict(agent.without_key),
            "spool": str(spool.resolve()),
        }
        reporter.update()
    agent.stop()
    reporter.update()
    return 0


if __name__ == "__main__":
    sys.exit(main())
