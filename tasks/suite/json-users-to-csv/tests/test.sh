#!/bin/bash
# Verifier: checks the workspace (the working directory) after the agent, then writes the reward (1 when every
# check passes) and one result per check as CTRF JSON to /logs/verifier.
LOGS="${SELFHARNESS_LOGS:-/logs}/verifier"
TESTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export TESTS
mkdir -p "$LOGS"
RESULTS="$(mktemp)"

# check NAME MESSAGE COMMAND: one test, passed when the shell COMMAND succeeds (run in a subshell, 10 s at most).
check() {
  local output
  if output="$(timeout 10 bash -c "$3" 2>&1)"; then
    printf 'passed\t%s\t\n' "$1" >>"$RESULTS"
  else
    output="$(printf '%s' "$output" | tail -n 3 | tr '\t\n' '  ' | cut -c1-300)"
    printf 'failed\t%s\t%s%s\n' "$1" "$2" "${output:+ ($output)}" >>"$RESULTS"
  fi
}

# same_lines FILE LINE...: FILE holds exactly these lines (spaces at line ends ignored).
same_lines() {
  diff <(sed 's/[[:space:]]*$//' "$1") <(shift; printf '%s\n' "$@")
}
export -f same_lines

# require FILE: a file the instruction asks for.
require() {
  check "required file $1" "missing required file $1" "test -f '$1'"
}

require out/users.csv
check 'rows as CSV' 'out/users.csv does not parse to the expected rows' 'python3 "$TESTS/check_users.py"'

python3 - "$RESULTS" "$LOGS" <<'PY'
import json
import sys

rows = [line.rstrip('\n').split('\t', 2) for line in open(sys.argv[1]) if line.strip()]
tests = [{'name': name, 'status': status, **({'message': message} if message else {})} for status, name, message in rows]
passed = sum(test['status'] == 'passed' for test in tests)
report = {'results': {'tool': {'name': 'selfharness-check'},
                      'summary': {'tests': len(tests), 'passed': passed, 'failed': len(tests) - passed},
                      'tests': tests}}
with open(sys.argv[2] + '/ctrf.json', 'w') as file:
    json.dump(report, file, indent=2)
with open(sys.argv[2] + '/reward.txt', 'w') as file:
    file.write('1\n' if tests and passed == len(tests) else '0\n')
PY
rm -f "$RESULTS"
