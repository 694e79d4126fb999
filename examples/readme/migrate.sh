#!/bin/sh
# A stand-in migration for README's example stack: says what it would migrate, and succeeds.
echo "migrate: schema of $DATABASE_URL is up to date (run from $(pwd))"
