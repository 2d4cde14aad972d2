#!/bin/bash
ls logs && head -n 3 logs/*.log

cd logs

export DAY=2024-03-01

mkdir -p ../out

cat *.log | grep "^$DAY" | awk '{ print $2 }' | sort | uniq -c | awk '{ print $2, $1 }' > "../out/$DAY.txt"

cat "../out/$DAY.txt"
