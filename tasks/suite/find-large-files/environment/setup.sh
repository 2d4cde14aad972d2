#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p data/raw data/cache/old "data/with space"
head -c 20000 /dev/zero > data/raw/big.bin
head -c 10240 /dev/zero > data/raw/exactly-10k.bin
head -c 10241 /dev/zero > data/cache/just-over.bin
head -c 500 /dev/zero > data/cache/small.bin
head -c 50000 /dev/zero > data/cache/old/archive.tar
head -c 12000 /dev/zero > "data/with space/large file.dat"
ln -s raw/big.bin data/link-to-big
