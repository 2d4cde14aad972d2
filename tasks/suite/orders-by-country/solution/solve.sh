#!/bin/bash
head -n 3 data/customers.csv data/orders.csv

mkdir -p out

python3 - <<'PY'
import csv
import json
from collections import Counter
country = {row['id']: row['country'] for row in csv.DictReader(open('data/customers.csv'))}
counts = Counter(country[row['customer_id']] for row in csv.DictReader(open('data/orders.csv')))
json.dump(dict(sorted(counts.items())), open('out/orders-by-country.json', 'w'), indent=2)
PY

cat out/orders-by-country.json
