"""A webhook receiver for trying notifications on one machine: it listens on 127.0.0.1:9000,
answers 204 to every POST and appends each request (headers and body) to received.jsonl, one
JSON object per line. Run it from the project's root with the project's Python:

    .venv/bin/python docs/examples/webhook_receiver.py [port] [file]
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
OUT = Path(sys.argv[2] if len(sys.argv) > 2 else "received.jsonl")


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        record = {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body.decode()}
        with OUT.open("a", encoding="utf-8") as sink:
            sink.write(json.dumps(record) + "\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the file is the record."""


ThreadingHTTPServer(("127.0.0.1", PORT), Receiver).serve_forever()
