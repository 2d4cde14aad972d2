import json, subprocess, sys
got = json.load(open('out/status.json'))
if got != {'200': 3, '404': 2, '302': 1, '500': 1, '403': 1}:
    sys.exit(f'out/status.json holds {got}')
run = subprocess.run([sys.executable, 'status_counts.py', sys.argv[1]], capture_output=True, text=True)
other = json.loads(run.stdout or 'null')
if other != {'201': 2, '204': 1}:
    sys.exit(f'status_counts.py on another log printed {run.stdout!r} {run.stderr[-200:]!r}')
