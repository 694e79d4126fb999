#!/usr/bin/env python3
"""A stand-in service for hub's demo stack: becomes ready after a delay, or fails on purpose.

    service.py --name keycloak --port 18080 --ready-after 1.5 [--fail-until-attempt 3] [--crash-after 0.5]

It listens on 127.0.0.1:PORT only once "ready" (so a tcp probe fails until then) and answers
every HTTP request with 200 "ok NAME". With --fail-until-attempt N it exits 1 at once while
HUB_ATTEMPT (set by hub-start) is below N: a flaky start that retries recover. With
--crash-after S it exits 1 after S seconds without ever becoming ready.
"""
import argparse
import http.server
import os
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ready-after", type=float, default=0.0)
    parser.add_argument("--fail-until-attempt", type=int, default=0)
    parser.add_argument("--crash-after", type=float, default=None)
    args = parser.parse_args()

    attempt = int(os.environ.get("HUB_ATTEMPT", "1"))
    if attempt < args.fail_until_attempt:
        print(f"{args.name}: attempt {attempt}: cannot connect to its database (simulated)", flush=True)
        return 1
    if args.crash_after is not None:
        print(f"{args.name}: starting…", flush=True)
        time.sleep(args.crash_after)
        print(f"{args.name}: fatal: configuration invalid (simulated crash)", flush=True)
        return 1

    print(f"{args.name}: warming up for {args.ready_after}s", flush=True)
    time.sleep(args.ready_after)

    name = args.name

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            body = f"ok {name}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"{name}: ready on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
