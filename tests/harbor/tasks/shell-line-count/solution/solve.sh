#!/bin/bash
set -euo pipefail
grep -c q /app/data/words.txt > /app/answer.txt
