"""`python -m lambda_local --moto URL --port PORT --state DIR` (run from tools/; tools/standins.py starts it)."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from .proxy import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lambda_local", description=__doc__)
    parser.add_argument("--moto", required=True, help="moto's URL, where every other request goes")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True,
                        help="code store, runtime clients, per-function logs (logs/<function>.log), /tmp of each environment")
    args = parser.parse_args(argv)
    args.state.mkdir(parents=True, exist_ok=True)
    # SIGTERM (tools/standins.py down) ends serve_forever through SystemExit, which stops every environment.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve(args.moto, args.port, args.state.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
