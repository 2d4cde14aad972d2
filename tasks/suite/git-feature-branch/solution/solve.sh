#!/bin/bash
cd service

git status && git log --oneline

git checkout -b feature/login

echo 'login enabled' > login.txt

git add login.txt && git commit -m 'Add login'

git checkout main

git log --oneline --all --graph
