#!/bin/bash
# The expected count lives with the tests (the agent never sees them), not in /app. This
# runs as root on files the agent made: a symlink is not followed (it could point at the
# expected answer), only a regular file counts.
expected="$(cat /tests/expected.txt)"
got=""
if [ -f /app/answer.txt ] && [ ! -L /app/answer.txt ]; then
  got="$(head -c 100 /app/answer.txt | tr -d '[:space:]')"
fi
if [ "$got" = "$expected" ]; then
  echo 1 > /logs/verifier/reward.txt
else
  echo "expected $expected, got '${got}'"
  echo 0 > /logs/verifier/reward.txt
fi
