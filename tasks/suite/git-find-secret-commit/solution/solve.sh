#!/bin/bash
git -C history log --oneline --stat | head -n 40

git -C history log -S SECRET_TOKEN --format='%H %s' --reverse

mkdir -p out && git -C history log -S SECRET_TOKEN --format=%H --reverse | head -n 1 > out/leak-commit.txt

git -C history show --name-only --format= "$(cat out/leak-commit.txt)" | head -n 1 > out/leak-file.txt

cat out/leak-commit.txt out/leak-file.txt
