#!/usr/bin/env python3
"""The healthcheck of README's example api: exit 0 when URL answers 200, else 1."""
import sys
import urllib.request

try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as answer:
        sys.exit(0 if answer.status == 200 else 1)
except OSError:
    sys.exit(1)
