#!/bin/bash
ls -a .venv/bin && cat .venv/bin/activate

source .venv/bin/activate

mkdir -p out

reportgen data/metrics.csv out/metrics-report.txt

cat out/metrics-report.txt
