#!/bin/bash
find assets -type f | sort

mkdir -p out

python3 - <<'PY'
import hashlib
import json
import os
entries = []
for folder, _, names in os.walk('assets'):
    for name in names:
        path = os.path.join(folder, name)
        data = open(path, 'rb').read()
        entries.append({'path': path, 'bytes': len(data), 'sha1': hashlib.sha1(data).hexdigest()})
json.dump(sorted(entries, key=lambda entry: entry['path']), open('out/manifest.json', 'w'), indent=2)
PY

cat out/manifest.json
