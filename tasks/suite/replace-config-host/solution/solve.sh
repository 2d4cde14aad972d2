#!/bin/bash
grep -rn 'db.old.internal' conf

find conf -type f -name '*.conf' -exec sed -i 's/db\.old\.internal/db.new.internal/g' {} +

grep -rn 'db\.' conf
