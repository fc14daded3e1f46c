"""What a schemathesis run reached: answers by operation and status, from its ndjson report.

    python3 scripts/lib/schemathesis_summary.py REPORT_DIR

schemathesis's own summary counts test cases and checks; this shows whether issue, count and
redeem were answered with real data (2xx), which a run of 404s would not.
"""

import collections
import json
import pathlib
import sys


def main(report_dir: str) -> None:
    reports = sorted(pathlib.Path(report_dir).glob("*.ndjson"))
    if not reports:
        sys.exit(f"no ndjson report in {report_dir}")
    statuses: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    phases: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    checks = collections.Counter()
    for line in reports[-1].open():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        recorder = finished["recorder"]
        for case_id, interaction in recorder.get("interactions", {}).items():
            case = recorder["cases"][case_id]["value"]
            operation = f"{case['method']} {case['path']}"
            response = interaction.get("response")
            if response is None:
                continue
            statuses[operation][response["status_code"]] += 1
            phases[operation][finished["phase"]] += 1
        for results in recorder.get("checks", {}).values():
            for check in results:
                checks[check["status"]] += 1
    # Methods the document does not list (unsupported_method probes, answered 405) on one line.
    probes = [op for op in statuses if op.split()[0] not in ("GET", "POST", "PATCH")]
    documented = sorted(op for op in statuses if op not in probes)
    print("answers by operation (status: count), all phases:")
    width = max(len(op) for op in documented)
    for operation in documented:
        by_status = statuses[operation]
        ok = sum(n for status, n in by_status.items() if 200 <= status < 300)
        detail = ", ".join(f"{status}: {n}" for status, n in sorted(by_status.items()))
        print(f"  {operation:<{width}}  2xx {ok:>5} of {sum(by_status.values()):>5}   ({detail})")
    if probes:
        answered = collections.Counter()
        for op in probes:
            answered.update(statuses[op])
        detail = ", ".join(f"{status}: {n}" for status, n in sorted(answered.items()))
        print(f"  other methods on known paths: {sum(answered.values())} requests ({detail})")
    print("requests by phase:")
    total = collections.Counter()
    for counter in phases.values():
        total.update(counter)
    print("  " + ", ".join(f"{phase}: {n}" for phase, n in sorted(total.items())))
    print("check results: " + ", ".join(f"{status}: {n}" for status, n in sorted(checks.items())))


if __name__ == "__main__":
    main(sys.argv[1])
