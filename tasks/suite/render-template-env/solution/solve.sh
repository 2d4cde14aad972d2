#!/bin/bash
cat render.sh templates/site.conf.tmpl

export SERVER_NAME=shop.example.com PORT=8080 ROOT_DIR=/srv/shop

mkdir -p out

./render.sh templates/site.conf.tmpl > out/site.conf

cat out/site.conf
