"""``python -m conformance ws://host:port [--report FILE] [--writes]``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from pathlib import Path

from conformance.checks import Check, Suite


def print_table(rows: list[Check]) -> None:
    width = max(len(c.name) for c in rows)
    print(f"{'check'.ljust(width)}  schema  result  detail")
    for check in rows:
        schema = "" if check.schema is None else str(check.schema)
        print(f"{check.name.ljust(width)}  {schema:>6}  {check.status:<6}  {check.detail[:120]}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance", description=__doc__)
    parser.add_argument("url", help="ws://host:port of the server under test")
    parser.add_argument("--report", type=Path, help="also write the results as JSON")
    parser.add_argument("--writes", action="store_true",
                        help="allow checks that change a device property (and restore it)")
    parser.add_argument("--failures-only", action="store_true", help="print failed rows only")
    args = parser.parse_args()
    try:
        results = asyncio.run(Suite(args.url, writes=args.writes).run())
    except OSError as exc:
        print(f"cannot reach {args.url}: {exc}", file=sys.stderr)
        return 2
    shown = [c for c in results if c.status == "fail"] if args.failures_only else results
    if shown:
        print_table(shown)
    counts = Counter(c.status for c in results)
    print(f"conformance: {counts['pass']} passed, {counts['fail']} failed, "
          f"{counts['skip']} skipped")
    if args.report:
        args.report.write_text(json.dumps([c.as_dict() for c in results], indent=1))
    return 1 if any(c.status == "fail" for c in results) else 0


if __name__ == "__main__":
    sys.exit(main())
