#!/bin/bash
# Harbor's usual verifier: pytest over the agent's code, the reward from its exit status.
cd /app
if python3 -m pytest -q -p no:cacheprovider /tests/test_slug.py; then
  echo 1 > /logs/verifier/reward.txt
else
  echo 0 > /logs/verifier/reward.txt
fi
