#!/bin/bash
du -ab data | sort -k2

mkdir -p out

find data -type f -size +10240c | sort > out/large.txt

cat out/large.txt
