#!/usr/bin/python3
"""SMTP sink for crm-notifier tests, built on aiosmtpd (1.4).

Listens on 127.0.0.1, accepts every message (SMTPUTF8 and 8BITMIME are
advertised) and appends one JSON line per accepted message to the log:

    {"t_ms", "mail_from", "rcpt_tos": [...], "data_b64", "size"}

``data_b64`` is the raw message exactly as received after SMTP dot
unstuffing (``envelope.original_content``, decode_data=False).  The log is
flushed after every message.

Fault knobs: ``--fail-rcpt REGEX`` rejects matching RCPT TO addresses with
``550 5.1.1 no such user``; ``--tempfail N`` answers the first N DATA
commands with ``451 4.3.0 try again later`` (those messages are not logged);
``--delay-ms N`` sleeps before answering DATA.

Stops on SIGTERM/SIGINT with exit status 0.
"""

import argparse
import asyncio
import base64
import json
import os
import re
import signal
import sys
import time

from aiosmtpd.smtp import SMTP

from peerlib import write_port_file


class SinkHandler:
    """aiosmtpd handler: applies the fault knobs and logs messages."""

    def __init__(self, args):
        self.fail_rcpt = re.compile(args.fail_rcpt) if args.fail_rcpt else None
        self.tempfail_left = args.tempfail
        self.delay = args.delay_ms / 1000.0
        self.log_data = not args.no_log_data
        self.log = open(args.log, "a", encoding="utf-8") if args.log else None
        self.accepted = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.fail_rcpt is not None and self.fail_rcpt.search(address):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.tempfail_left > 0:
            self.tempfail_left -= 1
            return "451 4.3.0 try again later"
        raw = envelope.original_content
        if raw is None:                      # not expected with decode_data=False
            raw = envelope.content if isinstance(envelope.content, bytes) \
                else envelope.content.encode("utf-8", "surrogateescape")
        entry = {"t_ms": int(time.time() * 1000),
                 "mail_from": envelope.mail_from,
                 "rcpt_tos": list(envelope.rcpt_tos)}
        if self.log_data:
            entry["data_b64"] = base64.b64encode(raw).decode("ascii")
        entry["size"] = len(raw)
        if self.log is not None:
            self.log.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self.log.flush()
        self.accepted += 1
        return "250 2.0.0 OK queued"

    def close(self):
        if self.log is not None:
            self.log.close()
            self.log = None


async def main(args):
    handler = SinkHandler(args)
    loop = asyncio.get_running_loop()

    def factory():
        return SMTP(handler, decode_data=False, enable_SMTPUTF8=True,
                    hostname="smtp-sink.test", loop=loop)

    server = await loop.create_server(factory, host="127.0.0.1",
                                      port=args.port, backlog=256)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        write_port_file(args.port_file, port)
    print("smtp_sink listening on 127.0.0.1:%d" % port, file=sys.stderr)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        server.close()
        handler.close()


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="0 = any free port")
    ap.add_argument("--port-file", help="write the bound port here (atomically)")
    ap.add_argument("--log", help="JSON-lines message log")
    ap.add_argument("--fail-rcpt", help="regex; matching RCPT TO gets 550 5.1.1")
    ap.add_argument("--tempfail", type=int, default=0,
                    help="answer the first N DATA with 451 4.3.0")
    ap.add_argument("--delay-ms", type=int, default=0,
                    help="sleep this long before answering DATA")
    ap.add_argument("--no-log-data", action="store_true",
                    help="omit data_b64 from the log (benchmarks)")
    return ap.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
    sys.exit(0)
