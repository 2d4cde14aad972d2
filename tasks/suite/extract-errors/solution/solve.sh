#!/bin/bash
head -n 5 logs/app.log

mkdir -p out

awk '$2 == "ERROR"' logs/app.log | sort -k1,1 | sed -E 's/^([^ ]+) ERROR \[[^]]*\] /\1 /' > out/errors.txt

cat out/errors.txt
