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

check 'parser fixed' 'python3 parse.py 42 does not print 42' '[ "$(cd parser && python3 parse.py 42)" = 42 ]'
check 'history kept' 'the 4 original commits are not all still there, with one new commit on top' '[ "$(git -C parser rev-list --count HEAD)" = 5 ] && [ "$(git -C parser log -1 --format=%s HEAD~1)" = "Add changelog" ] && git -C parser log --format=%s | grep -qx "Break the number parser"'
check 'later work kept' 'parser/CHANGELOG.md from the later commit is gone' 'test -f parser/CHANGELOG.md'
check 'parser clean' 'parser/ has uncommitted changes' '[ -z "$(git -C parser status --porcelain)" ]'

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
