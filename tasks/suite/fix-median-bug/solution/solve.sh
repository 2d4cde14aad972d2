#!/bin/bash
cat stats.py && python3 stats.py data/numbers.txt

python3 - <<'PY'
source = open('stats.py').read()
broken = "def median(values):\n    middle = len(values) // 2\n    return values[middle]\n"
fixed = (
    "def median(values):\n"
    "    ordered = sorted(values)\n"
    "    middle = len(ordered) // 2\n"
    "    if len(ordered) % 2 == 0:\n"
    "        return (ordered[middle - 1] + ordered[middle]) / 2\n"
    "    return ordered[middle]\n"
)
assert broken in source
open('stats.py', 'w').write(source.replace(broken, fixed))
PY

mkdir -p out && python3 stats.py data/numbers.txt > out/stats.txt

cat out/stats.txt
