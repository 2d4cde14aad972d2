#!/bin/bash
cat config/env.sh && head -n 5 report.sh

source config/env.sh

mkdir -p out

./report.sh > out/report.txt

cat out/report.txt
