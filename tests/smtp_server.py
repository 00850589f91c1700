#!/usr/bin/env python3
"""A local SMTP server for the e-mail tests (aiosmtpd, loopback only).

    python3 tests/smtp_server.py DIR [--user NAME PASSWORD] [--starttls CERT KEY | --tls CERT KEY]

Every message accepted is written to DIR/messageN.json: the envelope's
sender and recipients, the login that authenticated (if any), whether the
session was encrypted, and the raw message. The port is printed on stdout
once the server listens; it stops when stdin closes.
"""

import argparse
import json
import logging
import os
import socket
import ssl
import sys
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    def __init__(self, out):
        self.out = out
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        login = getattr(session.auth_data, "login", None)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": login.decode() if isinstance(login, bytes) else login,
            # STARTTLS sets session.ssl; SMTPS is TLS on the transport itself.
            "encrypted": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
            "data": envelope.original_content.decode("utf-8", "replace"),
        }
        path = os.path.join(self.out, f"message{self.count}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.replace(path + ".tmp", path)
        return "250 OK"


def main():
    # AUTH without TLS is what the plain test wants, and a refused handshake
    # is what the untrusted-CA test wants: no warnings or tracebacks.
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--user", nargs=2)
    parser.add_argument("--starttls", nargs=2)
    parser.add_argument("--tls", nargs=2, help="TLS from the first byte (SMTPS)")
    args = parser.parse_args()
    kwargs = {}
    if args.user:
        name, password = (x.encode() for x in args.user)

        def authenticator(server, session, envelope, mechanism, data):
            ok = isinstance(data, LoginPassword) and data.login == name and data.password == password
            return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

        kwargs.update(authenticator=authenticator, auth_required=True)
    if args.starttls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*args.starttls)
        kwargs.update(tls_context=context, require_starttls=True)
    elif args.tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*args.tls)
        kwargs.update(ssl_context=context)
    else:
        kwargs.update(auth_require_tls=False)
    port = free_port()
    controller = Controller(Sink(args.out), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print(port, flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
