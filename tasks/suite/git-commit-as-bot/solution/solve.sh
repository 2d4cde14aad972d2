#!/bin/bash
cd docs

git status --short

export GIT_AUTHOR_NAME='Docs Bot' GIT_AUTHOR_EMAIL='docs-bot@example.com'

git add guide.md faq.md

git commit -m 'Update docs'

git log -1 --format='%an <%ae> committed by %cn <%ce>'
