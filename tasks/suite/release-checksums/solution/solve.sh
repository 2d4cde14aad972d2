#!/bin/bash
ls -l release

mkdir -p out

sha256sum release/* | sort -k2 > out/SHA256SUMS

sha256sum -c out/SHA256SUMS
