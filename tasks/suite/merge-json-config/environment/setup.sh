#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p config
cat > config/defaults.json <<'JSON'
{
  "name": "shop",
  "server": {
    "host": "0.0.0.0",
    "port": 8080,
    "tls": {
      "enabled": false,
      "cert": null
    }
  },
  "features": [
    "search",
    "export"
  ],
  "log": {
    "level": "info",
    "format": "text"
  }
}
JSON
cat > config/overrides.json <<'JSON'
{
  "server": {
    "port": 9443,
    "tls": {
      "enabled": true,
      "cert": "/etc/ssl/shop.pem"
    }
  },
  "features": [
    "search"
  ],
  "log": {
    "level": "warn"
  },
  "region": "eu"
}
JSON
