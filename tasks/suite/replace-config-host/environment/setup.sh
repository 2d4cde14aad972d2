#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p conf/workers
printf 'host = db.old.internal\nport = 5432\nreplica = db.old.internal:5433\n' > conf/app.conf
printf 'queue = redis.internal\ndatabase = db.old.internal\n' > conf/workers/worker.conf
printf 'host = db.old.internal\nport = 5432\n' > conf/app.conf.bak
printf 'Migrated from db.old.internal on Friday.\n' > conf/NOTES.txt
printf 'cache = memcached.internal\n' > conf/cache.conf
