"""A local S3-compatible server for the tests: moto's S3 on loopback.

Prints the port it listens on, then serves until its stdin closes (the test
process that started it ended, however it ended).

Requests are answered one at a time. S3 evaluates a conditional put
(If-Match / If-None-Match) atomically; moto's threaded server checks the
condition and stores the object in two steps, so two racing writers could
both pass the check there. One request at a time gives S3's guarantee.

usage: python3 tests/s3_server.py BUCKET...
"""

import logging
import sys
import threading

import boto3
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server


def main() -> None:
    # One log line per request would bury the tests' own output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", 0, app, threaded=False)
    port = server.server_port
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    for bucket in sys.argv[1:]:
        client.create_bucket(Bucket=bucket)
    print(port, flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
