#!/bin/bash
tar -tzf incoming/batch.tar.gz

mkdir -p work && tar -xzf incoming/batch.tar.gz -C work

mkdir -p out && { head -n 1 work/parts/part-1.csv; tail -q -n +2 work/parts/*.csv | sort -t, -k1,1n; } | gzip > out/merged.csv.gz

zcat out/merged.csv.gz
