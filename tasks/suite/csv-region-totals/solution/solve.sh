#!/bin/bash
head -n 5 data/sales.csv

mkdir -p out

{ echo 'region,total'; tail -n +2 data/sales.csv | awk -F, '{ sum[$2] += $3 } END { for (region in sum) printf "%s,%.2f\n", region, sum[region] }' | sort; } > out/totals.csv

cat out/totals.csv
