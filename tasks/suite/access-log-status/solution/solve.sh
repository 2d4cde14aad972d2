#!/bin/bash
head -n 3 logs/access.log

cat > status_counts.py <<'PY'
import json
import re
import sys
from collections import Counter
LINE = re.compile(r'^\S+ \S+ \S+ \[[^]]*\] "[^"]*" (\d{3}) \S+')
counts = Counter()
with open(sys.argv[1]) as log:
    for line in log:
        match = LINE.match(line)
        if match:
            counts[match.group(1)] += 1
print(json.dumps(dict(counts), sort_keys=True))
PY

mkdir -p out && python3 status_counts.py logs/access.log > out/status.json

cat out/status.json
