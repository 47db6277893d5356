"""`python -m lambda_local --moto URL --port PORT --state DIR [control-plane settings]` (run from tools/;
tools/standins.py starts it). The control plane's settings default to AWS's quotas, a 1 s settle time and no added
latency; each flag also reads its FERRY_LAMBDA_* environment variable."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from .control_plane import add_arguments, settings_from
from .proxy import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lambda_local", description=__doc__)
    parser.add_argument("--moto", required=True, help="moto's URL, where every other request goes")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True,
                        help="code store, runtime clients, per-function logs (logs/<function>.log), /tmp of each environment")
    add_arguments(parser)
    args = parser.parse_args(argv)
    args.state.mkdir(parents=True, exist_ok=True)
    # SIGTERM (tools/standins.py down) ends serve_forever through SystemExit, which stops every environment.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve(args.moto, args.port, args.state.resolve(), settings_from(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
