#!/bin/bash
head -n 5 data/events.jsonl

mkdir -p out

python3 - <<'PY'
import json
from collections import Counter
events = []
for line in open('data/events.jsonl'):
    try:
        events.append(json.loads(line))
    except ValueError:
        continue
stats = {'total': len(events), 'by_type': dict(Counter(event['type'] for event in events)),
         'users': len({event['user'] for event in events})}
json.dump(stats, open('out/stats.json', 'w'), indent=2)
PY

cat out/stats.json
