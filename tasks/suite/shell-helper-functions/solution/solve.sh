#!/bin/bash
cat lib/text.sh data/titles.txt

source lib/text.sh

mkdir -p out

slugify < data/titles.txt | dedupe > out/slugs.txt

cat out/slugs.txt
