#!/bin/bash
# Partial credit, in reward.json: half for the total, half for the per-region sums.
python3 /tests/check_report.py /app/report.json > /logs/verifier/reward.json
