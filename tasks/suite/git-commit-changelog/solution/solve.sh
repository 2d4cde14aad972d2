#!/bin/bash
git -C repo log --oneline && git -C repo status --short

printf '# Changelog\n\n- 1.0.0: first release\n' > repo/CHANGELOG.md

git -C repo add CHANGELOG.md && git -C repo commit -m 'Add changelog'

git -C repo log --oneline -n 2
