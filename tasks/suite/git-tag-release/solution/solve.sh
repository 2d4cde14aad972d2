#!/bin/bash
git -C lib log --oneline --decorate

git -C lib tag -a v1.2.0 -m 'Release 1.2.0' "$(git -C lib log --format=%H --grep='^Bump version to 1.2.0$')"

mkdir -p out && git -C lib tag --sort=version:refname > out/tags.txt

cat out/tags.txt
