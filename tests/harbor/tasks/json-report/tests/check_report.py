"""Score /app/report.json against the expected sums; print a Harbor reward.json."""

import json
import sys

EXPECTED_TOTAL = 540
EXPECTED_REGIONS = {"north": 160, "south": 75, "east": 210, "west": 95}

try:
    with open(sys.argv[1]) as handle:
        report = json.load(handle)
except (OSError, ValueError):
    report = {}
if not isinstance(report, dict):
    report = {}
total_ok = report.get("total") == EXPECTED_TOTAL
regions_ok = report.get("regions") == EXPECTED_REGIONS
print(json.dumps({"reward": 0.5 * total_ok + 0.5 * regions_ok,
                  "total_ok": float(total_ok), "regions_ok": float(regions_ok)}))
