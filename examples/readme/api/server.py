#!/usr/bin/env python3
"""README's example api: serves GREETING on 127.0.0.1:$PORT, and /health."""
import http.server
import os

GREETING = os.environ.get("GREETING", "hello")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (b"ok" if self.path == "/health" else GREETING.encode()) + b"\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


print(f"api: listening on 127.0.0.1:{os.environ['PORT']}", flush=True)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
