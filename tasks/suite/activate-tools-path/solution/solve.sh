#!/bin/bash
ls tools tools/bin && cat tools/activate

. tools/activate

mkdir -p out

csvsum amount data/ledger.csv > out/ledger-total.txt

cat out/ledger-total.txt
