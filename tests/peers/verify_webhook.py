#!/usr/bin/python3
"""Independent Standard Webhooks signature verifier for http_peer.py logs.

Usage:
    verify_webhook.py --secret whsec_... [--secret whsec_...]
                      [--tolerance-s 300] [--now-s N] LOG

For every logged request whose path starts with /hook/ (control requests
excluded) prints one JSON line:

    {"id": webhook-id, "path", "verified": bool,
     "why": "ok"|"no_signature"|"mismatch"|"stale"|"bad_header"|"no_body",
     "body": the JSON body parsed, or null}

Verification (https://www.standardwebhooks.com/): the signed content is the
bytes ``webhook-id + "." + webhook-timestamp + "." + raw body``; the key is
the base64 decoding of the secret after its ``whsec_`` prefix; the MAC is
HMAC-SHA256; ``webhook-signature`` holds space-separated ``v1,<base64>``
entries and any one matching (hmac.compare_digest) verifies.  With several
--secret flags any secret verifying counts (key rotation).  A correctly
signed request whose timestamp is more than --tolerance-s from now (or from
--now-s when given) is "stale".  "no_body" means the log was written with
--no-log-body, so nothing can be checked.

Exit status: 0 when every hook request verifies, 1 otherwise, 2 on bad
arguments or an unreadable log.
"""

import base64
import binascii
import hashlib
import hmac
import json
import sys
import time

USAGE = ("usage: verify_webhook.py --secret whsec_... [--secret ...] "
         "[--tolerance-s 300] [--now-s N] LOG")


def parse_args(argv):
    """Tiny argument parser (only the modules the brief allows)."""
    secrets, tolerance, now, logs = [], 300, None, []
    it = iter(argv)
    for a in it:
        if a in ("--secret", "--tolerance-s", "--now-s"):
            v = next(it, None)
            if v is None:
                raise ValueError("%s needs a value" % a)
        elif a.startswith("--") and "=" in a:
            a, v = a.split("=", 1)
        else:
            v = None
        if a == "--secret":
            secrets.append(v)
        elif a == "--tolerance-s":
            tolerance = int(v)
        elif a == "--now-s":
            now = int(v)
        elif a.startswith("--"):
            raise ValueError("unknown option %s" % a)
        else:
            logs.append(a)
    if not secrets or len(logs) != 1:
        raise ValueError("need at least one --secret and exactly one LOG")
    return secrets, tolerance, now, logs[0]


def secret_key(secret):
    """Return the HMAC key for a ``whsec_`` secret."""
    if secret.startswith("whsec_"):
        secret = secret[len("whsec_"):]
    return base64.b64decode(secret, validate=True)


def sign(key, msg_id, timestamp, body):
    """Return the raw HMAC-SHA256 over id.timestamp.body."""
    content = msg_id.encode("utf-8") + b"." + timestamp.encode("utf-8") + b"." + body
    return hmac.new(key, content, hashlib.sha256).digest()


def verify(keys, headers, body, tolerance, now):
    """Return the "why" string for one request."""
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sig_header = headers.get("webhook-signature")
    if sig_header is None or not sig_header.strip():
        return "no_signature"
    if not msg_id or not ts or not ts.strip().isdigit():
        return "bad_header"
    candidates = []
    for entry in sig_header.split():
        version, sep, value = entry.partition(",")
        if not sep:
            return "bad_header"
        if version != "v1":
            continue                      # other schemes are ignored
        try:
            candidates.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue                      # an unreadable entry never matches
    if not candidates:
        return "no_signature"
    ok = False
    for key in keys:
        expected = sign(key, msg_id, ts, body)
        for cand in candidates:
            if hmac.compare_digest(expected, cand):
                ok = True
    if not ok:
        return "mismatch"
    if abs(now - int(ts)) > tolerance:
        return "stale"
    return "ok"


def main(argv):
    try:
        secrets, tolerance, now, log = parse_args(argv)
        keys = [secret_key(s) for s in secrets]
    except (ValueError, binascii.Error) as e:
        print("verify_webhook: %s\n%s" % (e, USAGE), file=sys.stderr)
        return 2
    if now is None:
        now = int(time.time())
    all_ok = True
    try:
        f = open(log, encoding="utf-8")
    except OSError as e:
        print("verify_webhook: %s" % e, file=sys.stderr)
        return 2
    with f:
        for line in f:
            if not line.strip():
                continue
            e = json.loads(line)
            path = e.get("path", "")
            if not path.startswith("/hook/") or e.get("control"):
                continue
            headers = {k.lower(): v for k, v in (e.get("headers") or {}).items()}
            if "body_b64" in e:
                body = base64.b64decode(e["body_b64"])
                why = verify(keys, headers, body, tolerance, now)
                try:
                    parsed = json.loads(body.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    parsed = None
            else:
                why, parsed = "no_body", None
            all_ok = all_ok and why == "ok"
            print(json.dumps({"id": headers.get("webhook-id"), "path": path,
                              "verified": why == "ok", "why": why,
                              "body": parsed}, ensure_ascii=False))
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
