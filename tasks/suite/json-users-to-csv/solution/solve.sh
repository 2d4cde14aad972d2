#!/bin/bash
head -c 300 data/users.json

mkdir -p out

python3 - <<'PY'
import csv
import json
users = json.load(open('data/users.json'))
with open('out/users.csv', 'w', newline='') as file:
    writer = csv.writer(file)
    writer.writerow(['id', 'name', 'email'])
    for user in sorted(users, key=lambda user: user['id']):
        writer.writerow([user['id'], user['name'], user['email']])
PY

cat out/users.csv
