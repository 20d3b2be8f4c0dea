"""A real SMTP server for the email plugin's tests, built on aiosmtpd.

Run as: python3 smtp_server.py DIR [--starttls CERT KEY]
[--auth USER PASSWORD | --xoauth2 MAILBOX KEY].
It listens on a free loopback port,
prints "listening on PORT" once ready, and writes every message it accepts
to DIR/<n>.json, parsed by Python's email package (headers decoded, each
MIME part's content type and decoded text) with the raw bytes beside it.
DIR/events.jsonl gets one line per attempt: the recipient and the answer.

What it answers depends on the recipient's local part, so one run can mix
faults:

- busy...      421 to RCPT on the first attempt for that address, then as usual
- tempfail...  451 after DATA on the first attempt, then as usual
- deferred...  451 after DATA, always
- reject...    550 5.1.1 to RCPT, always
- drop...      closes the connection after DATA, before any reply, on the
               first attempt, then as usual (the message is not kept)
- slow...      waits 1 s before answering DATA

With --starttls and --auth it is a submission server: STARTTLS before
anything else, then AUTH (PLAIN or LOGIN) with that user and password before
MAIL (530 otherwise, 535 for wrong credentials).

With --xoauth2 it plays Exchange Online's SMTP AUTH with OAuth: it offers
AUTH XOAUTH2 only, takes the SASL XOAUTH2 initial response
("user=MAILBOX^Aauth=Bearer TOKEN^A^A", base64) and accepts it when the
user is MAILBOX and the token is one the test's token endpoint issued
("EXPIRY.HEX", HEX the SHA-256 of "KEY.EXPIRY") and EXPIRY (Unix seconds)
has not passed; otherwise "535 5.7.3 Authentication unsuccessful", as
Exchange answers. Each attempt is a line in events.jsonl.

Like a real relay it refuses (554 5.6.0) a message whose header is not
ASCII (no SMTPUTF8 here, so non-ASCII must be RFC 2047 encoded) or that
lacks From, Date or Message-ID, and aiosmtpd itself refuses lines over
1000 octets.
"""

import argparse
import asyncio
import base64
import binascii
import email
import email.policy
import json
import os
import hashlib
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Recorder:
    def __init__(self, directory):
        self.directory = directory
        self.accepted = 0
        self.attempts = {}
        self.events = open(os.path.join(directory, "events.jsonl"), "a", buffering=1)

    def event(self, recipient, answer):
        self.events.write(json.dumps({"rcpt": recipient, "answer": answer}) + "\n")

    def first_attempt(self, recipient, stage):
        key = (recipient, stage)
        self.attempts[key] = self.attempts.get(key, 0) + 1
        return self.attempts[key] == 1

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            answer = "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
            self.event(address, answer)
            return answer
        if local.startswith("busy") and self.first_attempt(address, "rcpt"):
            answer = "421 4.3.2 Service busy, closing transmission channel"
            self.event(address, answer)
            return answer
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        recipient = envelope.rcpt_tos[0]
        local = recipient.split("@", 1)[0].lower()
        if local.startswith("slow"):
            await asyncio.sleep(1)
        if local.startswith("drop") and self.first_attempt(recipient, "data"):
            self.event(recipient, "dropped")
            server.transport.abort()
            return "250 2.0.0 never seen by the client"
        if local.startswith("deferred") or (
            local.startswith("tempfail") and self.first_attempt(recipient, "data")
        ):
            answer = "451 4.3.0 Temporary local problem, try again later"
            self.event(recipient, answer)
            return answer
        raw = envelope.original_content or envelope.content
        problem = self.problem(raw)
        if problem:
            answer = "554 5.6.0 " + problem
            self.event(recipient, answer)
            return answer
        self.accepted += 1
        queue_id = "Q%06d" % self.accepted
        message = email.message_from_bytes(raw, policy=email.policy.default)
        parts = []
        for part in message.walk():
            if part.is_multipart():
                parts.append({"content_type": part.get_content_type()})
            else:
                parts.append(
                    {
                        "content_type": part.get_content_type(),
                        "charset": part.get_content_charset(),
                        "transfer_encoding": part.get("Content-Transfer-Encoding"),
                        "content": part.get_content(),
                    }
                )
        record = {
            "queue_id": queue_id,
            "helo": session.host_name,
            "tls": session.ssl is not None,
            "auth_login": (
                session.auth_data.login.decode()
                if session.authenticated and session.auth_data
                else None
            ),
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "headers": {name: str(value) for name, value in message.items()},
            "raw_headers": {
                name: value
                for name, value in email.message_from_bytes(
                    raw, policy=email.policy.compat32
                ).items()
            },
            "parts": parts,
            "raw": raw.decode("ascii", "replace"),
        }
        path = os.path.join(self.directory, "%06d.json" % self.accepted)
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        answer = "250 2.0.0 Ok: queued as " + queue_id
        self.event(recipient, answer)
        return answer

    @staticmethod
    def problem(raw):
        head = raw.split(b"\r\n\r\n", 1)[0]
        try:
            head.decode("ascii")
        except UnicodeDecodeError:
            return "Header contains non-ASCII bytes without SMTPUTF8"
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        for name in ("From", "Date", "Message-ID"):
            if message.get(name) is None:
                return "Message lacks a %s header" % name
        return None


class XOAuth2Recorder(Recorder):
    """A Recorder that also checks SASL XOAUTH2 as Exchange Online does."""

    def __init__(self, directory, mailbox, key):
        super().__init__(directory)
        self.mailbox = mailbox
        self.key = key

    def token_ok(self, token):
        expiry, _, digest = token.partition(".")
        if not expiry.isdigit():
            return False
        expected = hashlib.sha256(("%s.%s" % (self.key, expiry)).encode()).hexdigest()
        return digest == expected and int(expiry) > time.time()

    async def auth_XOAUTH2(self, server, args):
        refused = AuthResult(
            success=False, handled=False, message="535 5.7.3 Authentication unsuccessful"
        )
        if len(args) < 2:
            self.event("", "XOAUTH2 without an initial response")
            return refused
        try:
            decoded = base64.b64decode(args[1], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            self.event("", "XOAUTH2 with bad base64")
            return refused
        fields = dict(
            part.split("=", 1) for part in decoded.split("\x01") if "=" in part
        )
        user = fields.get("user", "")
        bearer = fields.get("auth", "")
        token = bearer[len("Bearer "):] if bearer.startswith("Bearer ") else ""
        if user != self.mailbox or not self.token_ok(token):
            self.event(user, "XOAUTH2 refused")
            return refused
        self.event(user, "XOAUTH2 accepted")
        return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--auth", nargs=2, metavar=("USER", "PASSWORD"))
    parser.add_argument("--xoauth2", nargs=2, metavar=("MAILBOX", "KEY"))
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    # Like a relay without SMTPUTF8: non-ASCII headers must be encoded.
    options = {"enable_SMTPUTF8": False}
    if args.starttls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*args.starttls)
        options.update(tls_context=context, require_starttls=True)
    if args.auth:
        user, password = (value.encode() for value in args.auth)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login == user and auth_data.password == password
            if ok:
                return AuthResult(success=True, auth_data=auth_data)
            return AuthResult(
                success=False,
                handled=False,
                message="535 5.7.8 Authentication credentials invalid",
            )

        options.update(
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=bool(args.starttls),
        )
    recorder = Recorder(args.dir)
    if args.xoauth2:
        recorder = XOAuth2Recorder(args.dir, *args.xoauth2)
        options.update(
            auth_required=True,
            auth_require_tls=bool(args.starttls),
            auth_exclude_mechanism=["PLAIN", "LOGIN"],
        )
    controller = Controller(recorder, hostname="127.0.0.1", port=0, **options)
    # Port 0: the kernel picks a free port; aiosmtpd's own readiness check
    # would try to connect to port 0, so bind and start by hand.
    controller.port = free_port()
    controller.start()
    print("listening on %d" % controller.port, flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
