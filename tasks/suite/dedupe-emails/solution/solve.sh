#!/bin/bash
wc -l data/emails.txt && cat -A data/emails.txt | head -n 20

mkdir -p out

sed 's/^[[:space:]]*//; s/[[:space:]]*$//' data/emails.txt | tr 'A-Z' 'a-z' | grep -v '^$' | awk '!seen[$0]++' > out/unique-emails.txt

cat out/unique-emails.txt
