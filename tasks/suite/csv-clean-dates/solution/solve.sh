#!/bin/bash
cat -A data/raw.csv

mkdir -p out

python3 - <<'PY'
import csv
def iso(value):
    if '/' in value:
        day, month, year = value.split('/')
        return f'{year}-{month}-{day}'
    return value
rows = [[value.strip() for value in row] for row in csv.reader(open('data/raw.csv')) if any(v.strip() for v in row)]
header, body = rows[0], rows[1:]
column = header.index('joined')
with open('out/clean.csv', 'w', newline='') as file:
    writer = csv.writer(file, lineterminator='\n')
    writer.writerow(header)
    for row in body:
        row[column] = iso(row[column])
        writer.writerow(row)
PY

cat out/clean.csv
