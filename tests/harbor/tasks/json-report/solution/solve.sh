#!/bin/bash
set -euo pipefail
python3 - <<'PY'
import csv
import json

regions = {}
with open("/app/sales/march.csv") as handle:
    for row in csv.DictReader(handle):
        regions[row["region"]] = regions.get(row["region"], 0) + int(row["amount"])
with open("/app/report.json", "w") as handle:
    json.dump({"total": sum(regions.values()), "regions": regions}, handle)
PY
