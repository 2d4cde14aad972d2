#!/bin/bash
cat app.ini

sed -i '/^\[server\]/,/^\[/ s/^port *=.*/port = 9090/' app.ini

sed -i '/^\[logging\]/,/^\[/ s/^level *=.*/level = debug/' app.ini

printf '\n[cache]\nenabled = true\nttl = 300\n' >> app.ini

cat app.ini
