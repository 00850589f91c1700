"""A local Yahoo-chart-API server over a long-format candle CSV(.gz), for
bench/fetch.sh: answers GET /v8/finance/chart/SYM?period1=&period2= with
the bars in range, in Yahoo's JSON shape (bars stamped 09:30 New York).

    python3 bench/provider_server.py DATA.csv.gz   # prints "port N", serves until killed
"""
import bisect
import csv
import datetime as dt
import gzip
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")


def load(path):
    opener = gzip.open if path.endswith(".gz") else open
    series, stamps = {}, {}
    with opener(path, "rt") as f:
        for row in csv.DictReader(f):
            date = row["date"]
            if date not in stamps:
                stamps[date] = int(dt.datetime.combine(dt.date.fromisoformat(date), dt.time(9, 30), NY).timestamp())
            s = series.setdefault(row["symbol"], ([], []))
            s[0].append(stamps[date])
            adj = row.get("adj_close") or row["close"]
            s[1].append((float(row["open"]), float(row["high"]), float(row["low"]), float(row["close"]), float(adj), int(float(row["volume"]))))
    return series


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY the body
    # waits for the client's delayed ACK (~40 ms) on a kept-alive connection.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urlparse(self.path)
        prefix = "/v8/finance/chart/"
        symbol = url.path[len(prefix):] if url.path.startswith(prefix) else None
        bars = SERIES.get(symbol)
        if bars is None:
            body = json.dumps({"chart": {"result": None, "error": {"code": "Not Found", "description": "No data found"}}})
            return self.send(404, body)
        q = parse_qs(url.query)
        lo = bisect.bisect_left(bars[0], int(q["period1"][0]))
        hi = bisect.bisect_left(bars[0], int(q["period2"][0]))
        rows = bars[1][lo:hi]
        quote = {k: [r[i] for r in rows] for i, k in enumerate(("open", "high", "low", "close"))}
        quote["volume"] = [r[5] for r in rows]
        series = {
            "meta": {"symbol": symbol, "exchangeTimezoneName": "America/New_York"},
            "timestamp": bars[0][lo:hi],
            "indicators": {"quote": [quote], "adjclose": [{"adjclose": [r[4] for r in rows]}]},
        }
        self.send(200, json.dumps({"chart": {"result": [series], "error": None}}))

    def send(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    SERIES = load(sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()
