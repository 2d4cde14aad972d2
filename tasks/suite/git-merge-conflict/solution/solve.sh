#!/bin/bash
git -C site log --oneline --all --graph

git -C site merge feature || true

git -C site checkout --theirs config.txt && git -C site add config.txt

git -C site commit --no-edit

git -C site log --oneline --graph -n 5 && cat site/config.txt
