"""The image's HEALTHCHECK: exit 0 when the server on FALSEWORK_PORT answers /healthz.

(The slim base image has no curl; this needs nothing beyond the standard library.)
"""

import os
import sys
import urllib.request

port = os.environ.get("FALSEWORK_PORT", "7007")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=4) as answer:
        sys.exit(0 if answer.status == 200 else 1)
except OSError as exc:
    print(f"unhealthy: {exc}", file=sys.stderr)
    sys.exit(1)
