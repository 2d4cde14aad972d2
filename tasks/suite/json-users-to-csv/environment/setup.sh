#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p data
cat > data/users.json <<'JSON'
[
  {
    "id": 12,
    "name": "Grace Hopper",
    "email": "grace@example.com",
    "active": true
  },
  {
    "id": 3,
    "name": "Lovelace, Ada",
    "email": "ada@example.com",
    "active": false
  },
  {
    "id": 7,
    "name": "Alan Turing",
    "email": "alan@example.org",
    "active": true,
    "team": "crypto"
  },
  {
    "id": 25,
    "name": "Edsger \"EWD\" Dijkstra",
    "email": "ewd@example.nl",
    "active": true
  },
  {
    "id": 9,
    "name": "Barbara Liskov",
    "email": "barbara@example.edu",
    "active": true
  }
]
JSON
