#!/bin/bash
cat config/defaults.json config/overrides.json

mkdir -p out

python3 - <<'PY'
import json
def merge(base, override):
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged
defaults = json.load(open('config/defaults.json'))
overrides = json.load(open('config/overrides.json'))
json.dump(merge(defaults, overrides), open('out/config.json', 'w'), indent=2)
PY

cat out/config.json
