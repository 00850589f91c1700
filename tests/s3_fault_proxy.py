"""A fault-injecting proxy in front of the tests' local S3 server: what real
S3 clients see when the network, not the store, fails.

    python3 tests/s3_fault_proxy.py UPSTREAM_PORT RULES_FILE

Prints the port it listens on (loopback), then serves until its stdin
closes. Every request is forwarded to 127.0.0.1:UPSTREAM_PORT unless a rule
says otherwise. RULES_FILE is read again on every request (a test changes
the faults between commands); each line is

    METHOD KEY_PART ACTION [COUNT [SKIP]]

and applies to COUNT (default 1) requests whose method is METHOD and whose
path contains KEY_PART (`*` matches any), after letting the first SKIP
(default 0) of them through:

    502        forward it (the server applies it), then answer 502
    drop       forward it, then close the connection without an answer
    delay:S    forward it, wait S seconds, then answer what the server said
    hold:S     wait S seconds, then forward it (a request stuck on the way)
    strip      remove If-Match and If-None-Match, then forward it (a store
               that ignores conditions)

The count of each rule line is kept in memory for the file's content; a
changed file starts its counts again.
"""

import http.client
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te"}


class Rules:
    def __init__(self, path):
        self.path = path
        self.text = None
        self.used = []
        self.lock = threading.Lock()

    def take(self, method, path):
        """The action for this request, counting it against its rule."""
        with self.lock:
            try:
                text = open(self.path).read()
            except OSError:
                text = ""
            if text != self.text:
                self.text = text
                self.used = [0] * len(text.splitlines())
            for n, line in enumerate(text.splitlines()):
                fields = line.split()
                if len(fields) < 3:
                    continue
                want_method, part, action = fields[:3]
                count = int(fields[3]) if len(fields) > 3 else 1
                skip = int(fields[4]) if len(fields) > 4 else 0
                if want_method != method or (part != "*" and part not in path):
                    continue
                if self.used[n] >= count + skip:
                    continue
                self.used[n] += 1
                if self.used[n] <= skip:
                    return None
                return action
            return None


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None
    rules = None

    def log_message(self, *args):
        pass

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def handle_any(self):
        action = self.rules.take(self.command, self.path)
        body = self.body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if action == "strip":
            headers = {k: v for k, v in headers.items() if k.lower() not in ("if-match", "if-none-match")}
        if action and action.startswith("hold:"):
            time.sleep(float(action.split(":", 1)[1]))
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=60)
        upstream.request(self.command, self.path, body=body if body else None, headers=headers)
        reply = upstream.getresponse()
        data = reply.read()
        upstream.close()
        if action == "drop":
            self.close_connection = True
            return
        if action == "502":
            self.send_response(502)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if action and action.startswith("delay:"):
            time.sleep(float(action.split(":", 1)[1]))
        self.send_response(reply.status, reply.reason)
        for k, v in reply.getheaders():
            # A HEAD answer's length is the object's, not of its empty body.
            if k.lower() not in HOP_BY_HOP and (k.lower() != "content-length" or self.command == "HEAD"):
                self.send_header(k, v)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


def main():
    Proxy.upstream = int(sys.argv[1])
    Proxy.rules = Rules(sys.argv[2])
    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_port, flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
