#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p .venv/bin .venv/lib/reportgen data
cat > .venv/bin/activate <<'SH'
# Activates this environment in the current shell: use `source .venv/bin/activate`.
VIRTUAL_ENV="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VIRTUAL_ENV
export PATH="$VIRTUAL_ENV/bin:$PATH"
export PYTHONPATH="$VIRTUAL_ENV/lib${PYTHONPATH:+:$PYTHONPATH}"
deactivate() { export PATH="${PATH#"$VIRTUAL_ENV/bin:"}"; unset VIRTUAL_ENV PYTHONPATH; }
SH
cat > .venv/bin/reportgen <<'SH'
#!/bin/bash
exec python3 -m reportgen "$@"
SH
chmod +x .venv/bin/reportgen
touch .venv/lib/reportgen/__init__.py
cat > .venv/lib/reportgen/__main__.py <<'PY'
import csv
import sys

source, target = sys.argv[1], sys.argv[2]
groups = {}
for row in csv.DictReader(open(source)):
    groups.setdefault(row['metric'], []).append(int(row['value']))
with open(target, 'w') as report:
    report.write(f'reportgen 1.4 summary of {source}\n')
    for name in sorted(groups):
        values = groups[name]
        report.write(f'{name}: n={len(values)} mean={sum(values) / len(values):.1f} max={max(values)}\n')
PY
cat > data/metrics.csv <<'CSV'
metric,value
cpu,40
cpu,60
mem,70
disk,10
mem,90
cpu,80
disk,30
CSV
