"""Command line for the demo market: serve a market-day, or dump its ground truth.

python -m demo serve hollowmere --day 3 --port 8081
python -m demo truth copperline --day 3 --out var/truth
python -m demo truth copperline --day 3 --kind vendors      # JSON Lines on stdout
"""

from __future__ import annotations

import argparse
import json
import sys

from demo.server import serve_forever
from demo.truth import KINDS, dump, truth, write_jsonl
from demo.world import MARKETS


def _scale(text: str) -> str | dict[str, int]:
    """A preset name or a JSON object of Scale fields."""
    return json.loads(text) if text.startswith("{") else text


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the chosen command."""
    parser = argparse.ArgumentParser(prog="python -m demo", description="dnm-archive demo marketplace")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("serve", "truth"):
        p = sub.add_parser(name)
        p.add_argument("market", choices=MARKETS)
        p.add_argument("--day", type=int, default=0)
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--scale", type=_scale, default="small", help='"small", "large" or a JSON object')
        p.add_argument("--malformed-rate", type=float, default=0.0)
        if name == "serve":
            p.add_argument("--host", default="127.0.0.1")
            p.add_argument("--port", type=int, default=8000)
        else:
            p.add_argument("--kind", choices=KINDS, help="write one kind to stdout")
            p.add_argument("--out", help="directory for all four kinds")
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            serve_forever(args.market, args.day, seed=args.seed, host=args.host, port=args.port,
                          scale=args.scale, malformed_rate=args.malformed_rate)  # fmt: skip
        elif args.out:
            for kind, path in dump(
                args.out, args.market, args.day, args.seed, args.scale, args.malformed_rate
            ).items():
                print(f"{kind}: {path}")
        else:
            records = truth(
                args.market, args.day, args.seed, args.scale, args.kind or "listings", args.malformed_rate
            )
            write_jsonl(records, sys.stdout)
    except BrokenPipeError:
        return 0  # output piped into head and the like
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
