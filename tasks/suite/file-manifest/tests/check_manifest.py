import hashlib, json, os, sys
want = []
for folder, _, names in os.walk('assets'):
    for name in names:
        path = os.path.join(folder, name)
        data = open(path, 'rb').read()
        want.append({'path': path, 'bytes': len(data), 'sha1': hashlib.sha1(data).hexdigest()})
want.sort(key=lambda entry: entry['path'])
got = json.load(open('out/manifest.json'))
if got != want:
    sys.exit(f'expected {want}, found {got}')
