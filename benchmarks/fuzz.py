"""The ingest parsers' and the token code's property tests (tests/service/test_properties.py) at 10,000 examples
each: Hypothesis's ``thorough`` profile, where CI runs its ``ci`` profile (150). A benchmark, not a CI test.

    python -m benchmarks.fuzz [--profile thorough] [-k EXPR]

Runs pytest once over the file and prints, per property, the examples Hypothesis ran (passing, invalid,
failing, over its reuse, generate and shrink phases), the seconds the test took, why Hypothesis stopped, and
the outcome. The last line is one JSON object with every row. Exit status: pytest's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TESTS = "tests/service/test_properties.py"
_PHASE = re.compile(r"- during (\w+) phase \(([\d.]+) seconds\)")
_COUNTS = re.compile(r"- (\d+) passing, (\d+) failing, and (\d+) invalid test cases")
_STOPPED = re.compile(r"- Stopped because (.+)")


def statistics(output: str) -> dict[str, dict[str, Any]]:
    """Per test name, the counts of ``--hypothesis-show-statistics`` summed over the phases."""
    out: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in output.split("Hypothesis Statistics", 1)[-1].splitlines():
        head = re.match(r"^\S*::(\w+)(?:\[.*\])?:$", line.strip())
        if head:
            current = out.setdefault(head.group(1), {"passing": 0, "failing": 0, "invalid": 0, "phases": {},
                                                     "stopped": ""})
            continue
        if current is None:
            continue
        if m := _PHASE.search(line):
            current["phases"][m.group(1)] = float(m.group(2))
        elif m := _COUNTS.search(line):
            for key, value in zip(("passing", "failing", "invalid"), m.groups(), strict=True):
                current[key] += int(value)
        elif m := _STOPPED.search(line):
            current["stopped"] = m.group(1).strip()
    return out


def outcomes(junit: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for case in ET.parse(junit).iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        skipped = case.find("skipped") is not None
        out[case.get("name", "")] = {"seconds": round(float(case.get("time", "0")), 1),
                                     "result": "FAILED" if failed else "skipped" if skipped else "passed"}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="thorough", help="Hypothesis profile: thorough (10,000) or ci (150)")
    p.add_argument("-k", dest="select", help="only the properties pytest -k selects")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", TESTS, "-q", "-p", "no:cacheprovider", "--hypothesis-show-statistics",
               f"--junitxml={junit}", *(["-k", args.select] if args.select else [])]
        run = subprocess.run(cmd, cwd=REPO, env={**os.environ, "CALLWATCH_HYPOTHESIS": args.profile},
                             capture_output=True, text=True)
        results = outcomes(junit) if junit.exists() else {}
    stats = statistics(run.stdout)
    rows = []
    print(f"{'property':<78s} {'examples':>8s} {'invalid':>7s} {'failing':>7s} {'seconds':>8s}  result")
    for name, res in results.items():
        st = stats.get(name)
        row = {"property": name, **res, **({k: st[k] for k in ("passing", "invalid", "failing", "stopped")}
                                           if st else {})}
        rows.append(row)
        if st is None:  # not a property: a plain regression test
            print(f"{name:<78s} {'-':>8s} {'-':>7s} {'-':>7s} {res['seconds']:8.1f}  {res['result']}")
            continue
        print(f"{name:<78s} {st['passing']:8d} {st['invalid']:7d} {st['failing']:7d} {res['seconds']:8.1f}  "
              f"{res['result']}  ({st['stopped'] or 'no stop reason reported'})")
    if run.returncode != 0:
        print(run.stdout[-6000:], run.stderr[-2000:], sep="\n", file=sys.stderr)
    print(json.dumps({"profile": args.profile, "exit": run.returncode, "rows": rows}))
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
