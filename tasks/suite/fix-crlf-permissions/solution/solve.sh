#!/bin/bash
ls -l tools && ./tools/run.sh

head -n 2 tools/run.sh | od -c | head -n 5

sed -i 's/\r$//' tools/run.sh

chmod +x tools/run.sh

mkdir -p out && ./tools/run.sh > out/run.txt

cat out/run.txt
