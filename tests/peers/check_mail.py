#!/usr/bin/python3
"""Inspect the messages in an smtp_sink.py log.

Usage:  check_mail.py [--strict] LOG

Prints a JSON array on stdout, one object per logged message:

    {"from", "to", "subject", "body", "message_id", "list_unsubscribe",
     "list_unsubscribe_post", "encoded_words": [...], "problems": [...],
     "envelope_from", "envelope_to", "t_ms"}

``subject``/``from``/``to`` are decoded the way a mail reader shows them
(email.header.decode_header + make_header).  ``body`` is the first
text/plain part decoded with its charset, CRLF turned into LF, trailing
newlines stripped.

``encoded_words`` lists every RFC 2047 encoded word found in the raw header
lines.  ``problems`` names the header for each of:
  * an encoded word longer than 75 characters;
  * a physical header line longer than 76 characters (CRLF excluded) that
    contains an encoded word;
  * an encoded word whose charset is not UTF-8, whose payload does not
    base64/Q-decode, or whose decoded bytes are not valid UTF-8 by
    themselves (a word split inside a multi-byte character);
  * a raw header byte outside ASCII.

Exit status: 0, or 1 with --strict when any message has problems, 2 when
the log cannot be read.
"""

import base64
import binascii
import email
import email.policy
import json
import re
import sys
from email.header import Header, decode_header, make_header

ENCODED_WORD_RE = re.compile(rb"=\?([^?]+)\?([BbQq])\?([^?]*)\?=")
Q_PAYLOAD_RE = re.compile(rb"^(?:[!-<>@-~]|=[0-9A-Fa-f]{2})*$")   # no '?', '=' only as =HH


def header_block(raw):
    """Return the raw header section (bytes before the first empty line)."""
    m = re.search(rb"\r?\n\r?\n", raw)
    return raw[:m.start()] if m else raw


def header_lines(block):
    """Yield (header name, physical line) pairs; continuation lines carry the
    name of the header they belong to."""
    name = "?"
    for line in re.split(rb"\r?\n", block):
        if not line:
            continue
        if line[:1] not in (b" ", b"\t"):
            name = line.split(b":", 1)[0].decode("ascii", "replace").strip() or "?"
        yield name, line


def decode_q(payload):
    """Decode an RFC 2047 'Q' payload; raise ValueError if malformed."""
    if not Q_PAYLOAD_RE.match(payload):
        raise ValueError("bad Q payload")
    out = bytearray()
    i = 0
    while i < len(payload):
        c = payload[i]
        if c == 0x5F:                         # '_' is a space
            out.append(0x20)
            i += 1
        elif c == 0x3D:                       # '=HH'
            out.append(int(payload[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(c)
            i += 1
    return bytes(out)


def check_word(name, m, problems):
    """Check one encoded word match; append problems naming the header."""
    word = m.group(0)
    charset = m.group(1).split(b"*", 1)[0].decode("ascii", "replace").lower()
    enc = m.group(2).upper()
    payload = m.group(3)
    if len(word) > 75:
        problems.append("%s: encoded word longer than 75 chars (%d)" % (name, len(word)))
    utf8 = charset in ("utf-8", "utf8")
    if not utf8:
        problems.append("%s: encoded word charset %s is not UTF-8" % (name, charset))
    try:
        if enc == b"B":
            if len(payload) % 4:
                raise ValueError("bad base64 length")
            data = base64.b64decode(payload, validate=True)
        else:
            data = decode_q(payload)
    except (ValueError, binascii.Error):
        problems.append("%s: encoded word payload does not %s-decode"
                        % (name, enc.decode()))
        return
    if not utf8:
        return                               # already reported; no UTF-8 check
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        problems.append("%s: encoded word is not valid UTF-8 on its own" % name)


def scan_headers(raw):
    """Return (encoded words, problems) found in the raw header lines."""
    words, problems = [], []
    for name, line in header_lines(header_block(raw)):
        if any(b > 0x7F for b in line):
            problems.append("%s: raw non-ASCII byte in header" % name)
        found = list(ENCODED_WORD_RE.finditer(line))
        if found and len(line) > 76:
            problems.append("%s: header line longer than 76 chars (%d) with encoded word"
                            % (name, len(line)))
        for m in found:
            words.append(m.group(0).decode("ascii", "replace"))
            check_word(name, m, problems)
    return words, problems


def shown(value):
    """Decode a header value as a mail reader would display it."""
    if value is None:
        return None
    if isinstance(value, Header):
        # raw 8-bit header (SMTPUTF8): compat32 hands back an unknown-8bit
        # Header; show its bytes as UTF-8, then decode any encoded words.
        value = "".join(
            p.decode("utf-8" if c in (None, "unknown-8bit") else c, "replace")
            if isinstance(p, bytes) else p for p, c in decode_header(value))
    try:
        return str(make_header(decode_header(value)))
    except (UnicodeError, LookupError, binascii.Error, ValueError):
        return unfold(value)


def unfold(value):
    """Remove header folding (CRLF before whitespace)."""
    if value is None:
        return None
    return re.sub(r"\r?\n(?=[ \t])", "", str(value))


def text_body(msg, problems):
    """Return the first non-attachment text/plain part decoded to str."""
    for part in msg.walk():
        if part.get_content_type() != "text/plain" or part.is_multipart():
            continue
        if (part.get("Content-Disposition") or "").lower().startswith("attachment"):
            continue
        data = part.get_payload(decode=True) or b""
        charset = part.get_content_charset() or "us-ascii"
        try:
            text = data.decode(charset)
        except LookupError:
            problems.append("body: unknown charset %s" % charset)
            text = data.decode("utf-8", "replace")
        except UnicodeDecodeError:
            problems.append("body: text does not decode as %s" % charset)
            text = data.decode(charset, "replace")
        return text.replace("\r\n", "\n").rstrip("\n")
    return None


def inspect(entry):
    """Build the report object for one smtp_sink log entry."""
    out = {"t_ms": entry.get("t_ms"), "envelope_from": entry.get("mail_from"),
           "envelope_to": entry.get("rcpt_tos")}
    if "data_b64" not in entry:
        out["problems"] = ["log has no data_b64 (sink ran with --no-log-data)"]
        return out
    raw = base64.b64decode(entry["data_b64"])
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    words, problems = scan_headers(raw)
    out.update({
        "from": shown(msg["From"]),
        "to": shown(msg["To"]),
        "subject": shown(msg["Subject"]),
        "body": text_body(msg, problems),
        "message_id": unfold(msg["Message-ID"]),
        "list_unsubscribe": unfold(msg["List-Unsubscribe"]),
        "list_unsubscribe_post": unfold(msg["List-Unsubscribe-Post"]),
        "encoded_words": words,
        "problems": problems,
    })
    return out


def main(argv):
    strict = "--strict" in argv
    paths = [a for a in argv if a != "--strict"]
    if len(paths) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        with open(paths[0], encoding="utf-8") as f:
            entries = [json.loads(l) for l in f if l.strip()]
    except (OSError, ValueError) as e:
        print("check_mail: cannot read %s: %s" % (paths[0], e), file=sys.stderr)
        return 2
    results = [inspect(e) for e in entries]
    json.dump(results, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
    return 1 if strict and any(r["problems"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
