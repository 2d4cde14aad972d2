#!/bin/bash
ls -l config

umask 077

mkdir -p secrets

cp config/api-key.source secrets/api-key.txt

cp config/db-password.source secrets/db-password.txt

ls -la secrets
