#!/bin/bash
head -n 5 notes/text.txt

mkdir -p out

tr 'A-Z' 'a-z' < notes/text.txt | grep -oE '[a-z]+' | sort | uniq -c | sort -k1,1nr -k2,2 | head -n 5 | awk '{print $2, $1}' > out/top-words.txt

cat out/top-words.txt
