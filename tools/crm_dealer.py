#!/usr/bin/env python3
"""crm_dealer.py: the Python reference dealer client.

Written from tools/DEALERS.md, Parts 2 and 3 (the wire protocol, the uplink), with nothing but
the standard library, pyzmq and msgpack; it takes the flags of crm-dealer
(Part 1), prints the same JSON lines, keeps the same state file and exits
with the same codes.

It follows one dealer's stream (dealer.dispatch: a test drive;
dealer.assigned: a customer given to this dealer; dealer.task: a task for
the dealer's consultant, opened or closed; dealer.call: a call task from
crm-notifier; dealer.finding: a data-quality
error on one of the dealer's customer records, open or cleared; all
numbered alike): the
last number applied is kept in a state file; at start it asks for a replay
from there, applies what comes in order, then applies live pushes. A push that skips a number, a heartbeat
announcing a number it has not applied, or --poll-ms without news make it
ask for a replay again. A numbered message of a type this client does not
know (a newer gateway's) is logged and passed over: its number counts as
applied and is acknowledged, so it never stalls the stream. A request without an answer is sent again on a
fresh socket; busy, unavailable and not_certified make it wait and ask
again. Everything read from the network is checked before use: a frame
that does not follow Part 2 is logged and dropped.

    crm_dealer.py --dealer ID --cert SECRET --server-cert PUBLIC --state FILE
    crm_dealer.py --dealer ID --cert SECRET --server-cert PUBLIC status TD STATUS [--at ..]
    crm_dealer.py --dealer ID --cert SECRET --server-cert PUBLIC send KIND FILE.json

`send` sends each JSON object of FILE as the body of one uplink request
(DEALERS.md, "Uplink"), in file order, each after the answer to the one
before, and prints one JSON line per record.
"""

import argparse
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time

try:
    import msgpack
    import zmq
    from zmq.utils import z85
except ImportError as e:  # pragma: no cover - a set-up problem, said plainly
    sys.stderr.write("crm_dealer.py: needs pyzmq and msgpack (Debian: apt install python3-zmq "
                     "python3-msgpack; else pip install pyzmq msgpack): %s\n" % e)
    sys.exit(1)

VERSION = "0.1.0"
PRODUCER = "dealer-py"

EXIT_OK, EXIT_NO, EXIT_USAGE, EXIT_NOANSWER, EXIT_GAP = 0, 1, 2, 2, 3

# Limits of Part 2, section 4: nothing larger is valid, so nothing larger is read.
FRAME_MAX = 256 * 1024
STR_MAX = 64 * 1024
STRS_MAX = 1024
ID_MAX = 63
NAME_MAX = 47
DEPTH_MAX = 16  # nesting kept from fields this client does not know
CERT_FILE_MAX = 64 * 1024

HEARTBEAT_TIMEOUT_MS = 3000
ACK_EVERY_MS, ACK_EVERY_N = 100, 100
SYNC_EVERY_MS, SYNC_EVERY_N = 100, 100  # --sync batch
APPLY_RETRY_MS = 5000
BACKOFF_FIRST_MS, BACKOFF_MAX_MS = 1000, 30000
DRAIN_MAX = 1000  # messages taken from one socket per turn, so that neither starves the other
RETRY_CODES = ("busy", "unavailable", "not_certified")
ID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
NUMBER_RE = re.compile(r"[0-9]{1,20}")
CST = datetime.timezone(datetime.timedelta(hours=8))

SUMMARY = """\
The Python reference dealer client: applies this dealer's dispatches in order,
each once while it runs; after a crash --sync each repeats at most the one
dispatch applied but not yet in the state file, --sync batch up to one batch
(100). Each dispatch carries its number (seq) for your system to drop a repeat.

  crm_dealer.py --dealer ID --cert SECRET --server-cert PUBLIC --state FILE [--once] [--exec CMD]
  crm_dealer.py --dealer ID --cert SECRET --server-cert PUBLIC status TESTDRIVE_ID STATUS
                [--at "YYYY-MM-DD HH:MM"] [--note TEXT]
  crm_dealer.py --dealer ID --cert SECRET --server-cert PUBLIC send KIND FILE.json
                KIND: customer assign followup order delivery service lost lost-decide
                staff-add staff-update staff-leave staff-away reassign owner-decide; FILE: one JSON object, an array of
                them, or one a line ("-": stdin); one line of JSON out per record"""

EPILOG = """\
Exit: 0 done (status accepted, every record stored), 1 refused (some records
refused) or start-up failed, 2 usage, unreadable FILE or no answer, 3 the stream
no longer holds what this dealer needs (see DEALERS.md)."""

# ------------------------------------------------------------------ logging

LEVELS = {"debug": 0, "info": 1, "warn": 2, "error": 3}
_log_level = 1


def _log_value(value):
    """A log value that cannot break the line: what came from the network
    may hold spaces, quotes, '=' or control bytes."""
    text = str(value)[:160]
    out = "".join("_" if c in ' "=\\' or ord(c) < 0x20 or ord(c) == 0x7F else c for c in text)
    return out or "-"


def log(level, event, **fields):
    if LEVELS[level] < _log_level:
        return
    t = time.time()
    line = "ts=%s.%03dZ level=%s service=%s event=%s" % (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)), int(t * 1000) % 1000, level,
        PRODUCER, event)
    for key, value in fields.items():
        line += " %s=%s" % (key, _log_value(value))
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def mono_ms():
    return int(time.monotonic() * 1000)


def now_ms():
    return int(time.time() * 1000)


# ------------------------------------------------------------------ messages


class Malformed(Exception):
    """A frame that does not follow Part 2, section 4; `field` names where."""

    def __init__(self, field, why):
        super().__init__("%s: %s" % (field, why))
        self.field = field
        self.why = why


STR, INT, BOOL, STRS = "string", "integer", "boolean", "array of strings"

# The bodies this client receives (Part 2, section 6): field -> (type, required).
BODIES = {
    "dealer.dispatch": {
        "testdrive_id": (STR, True), "dealer_id": (STR, True), "lead_id": (STR, False),
        "customer_id": (STR, False), "customer_name": (STR, False), "mobile": (STR, False),
        "phone": (STR, False), "model": (STR, False), "at": (INT, True),
        "channel": (STR, False), "source": (STR, False), "reason": (STR, False),
        "reason_text": (STR, False), "findings": (STRS, False),
    },
    "dealer.assigned": {
        "customer_id": (STR, True), "dealer_id": (STR, True), "customer_name": (STR, False),
        "mobile": (STR, False), "phone": (STR, False), "model": (STR, False),
        "grade": (STR, False), "reason": (STR, True), "reason_text": (STR, False),
    },
    "dealer.task": {
        "task_id": (STR, True), "customer_id": (STR, True), "dealer_id": (STR, True),
        "state": (STR, True), "consultant_id": (STR, False), "kind": (STR, False),
        "due_at": (INT, False), "content": (STR, False),
    },
    "dealer.finding": {
        "customer_id": (STR, True), "dealer_id": (STR, True), "state": (STR, True),
        "field": (STR, True), "code": (STR, True), "rule": (STR, False), "part": (STR, False),
        "severity": (STR, False), "message": (STR, False), "consultant_id": (STR, False),
    },
    "dealer.call": {
        "call_id": (STR, True), "dealer_id": (STR, True), "consultant_id": (STR, False),
        "customer_id": (STR, False), "phone": (STR, False), "topic": (STR, True),
        "text": (STR, True), "due_at": (INT, True),
    },
    "heartbeat": {"streams": (STRS, True), "uptime_ms": (INT, False)},
    "dealer.reply": {
        "ok": (BOOL, True), "code": (STR, False), "message": (STR, False),
        "first": (INT, False), "last": (INT, False), "count": (INT, False),
        "id": (STR, False), "customer_id": (STR, False), "created": (BOOL, False),
        "findings": (STRS, False), "errors": (STRS, False),
    },
}

# The numbered messages of the dealer's own stream: applied, counted and
# acknowledged alike. Another type numbered on our stream is passed over
# (counted, acknowledged, not applied): see Stream.numbered.
STREAM_TYPES = ("dealer.dispatch", "dealer.assigned", "dealer.task", "dealer.finding", "dealer.call")

# The uplink requests (DEALERS.md, "Uplink"): send KIND -> request type and
# its body fields, field -> (type, required), in the order of the reference.
_RID = {"record_id": (STR, True), "dealer_id": (STR, False)}
UPLINK = {
    "customer": ("customer.file", dict(_RID, **{
        "customer_id": (STR, False), "name": (STR, False), "gender": (STR, False),
        "birthday": (STR, False), "id_number": (STR, False), "address": (STR, False),
        "postcode": (STR, False), "city": (STR, False), "province": (STR, False),
        "mobile": (STR, False), "home_phone": (STR, False), "office_phone": (STR, False),
        "usual_phone": (STR, False), "email": (STR, False), "remark": (STR, False),
        "fleet": (BOOL, False), "vip": (BOOL, False), "difficult": (BOOL, False),
        "grade": (STR, False), "expected_purchase_date": (STR, False),
        "consultant_id": (STR, False), "vin": (STR, False), "engine_number": (STR, False),
        "model": (STR, False), "transmission": (STR, False), "colour": (STR, False),
        "plate": (STR, False), "plate_date": (STR, False), "sale_date": (STR, False),
        "first_service_date": (STR, False), "first_service_mileage": (INT, False)})),
    "assign": ("customer.assign", dict(_RID, **{
        "customer_id": (STR, True), "consultant_id": (STR, True), "reason": (STR, False)})),
    "followup": ("followup.record", dict(_RID, **{
        "customer_id": (STR, True), "consultant_id": (STR, True), "at": (INT, False),
        "result": (STR, True), "content": (STR, False), "feedback": (STR, False),
        "grade": (STR, False), "expected_purchase_date": (STR, False),
        "next_at": (INT, False), "next_content": (STR, False)})),
    "order": ("order.record", dict(_RID, **{
        "order_id": (STR, True), "action": (STR, True), "customer_id": (STR, False),
        "model": (STR, False), "price": (INT, False), "promised_date": (STR, False),
        "consultant_id": (STR, False), "reason": (STR, False)})),
    "delivery": ("delivery.record", dict(_RID, **{
        "order_id": (STR, True), "action": (STR, True), "vin": (STR, False),
        "date": (STR, False), "promised_date": (STR, False), "reason": (STR, False)})),
    "service": ("service.record", dict(_RID, **{
        "work_order": (STR, True), "customer_id": (STR, False), "vin": (STR, False),
        "date": (STR, True), "mileage": (INT, False), "work": (STR, False),
        "amount_fen": (INT, False)})),
    "lost": ("prospect.lose", dict(_RID, **{
        "customer_id": (STR, True), "consultant_id": (STR, True), "reason": (STR, True),
        "note": (STR, False)})),
    "lost-decide": ("lost.decide", dict(_RID, **{
        "customer_id": (STR, True), "manager_id": (STR, True), "decision": (STR, True),
        "note": (STR, False)})),
    "staff-add": ("staff.add", dict(_RID, **{
        "staff_id": (STR, True), "role": (STR, True), "name": (STR, True),
        "manager_id": (STR, False)})),
    "staff-update": ("staff.update", dict(_RID, **{
        "staff_id": (STR, True), "role": (STR, False), "name": (STR, False),
        "manager_id": (STR, False)})),
    "staff-leave": ("staff.leave", dict(_RID, **{
        "staff_id": (STR, True), "reason": (STR, False)})),
    "staff-away": ("staff.away", dict(_RID, **{
        "staff_id": (STR, True), "from": (STR, True), "to": (STR, True),
        "postpone": (BOOL, False), "reason": (STR, False)})),
    "reassign": ("consultant.reassign", dict(_RID, **{
        "from_consultant": (STR, False), "to_consultant": (STR, False), "undo": (STR, False),
        "reason": (STR, False)})),
    "owner-decide": ("owner.decide", dict(_RID, **{
        "customer_id": (STR, True), "decision": (STR, True), "director_id": (STR, True),
        "note": (STR, False)})),
}
I64_TEXT_MAX = 999999999999999999  # 18 digits, what crm-dealer takes too


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _check_str(v, field, limit=STR_MAX):
    if not isinstance(v, str):
        raise Malformed(field, "expected a string, got %s" % type(v).__name__)
    if "\x00" in v:
        raise Malformed(field, "NUL in a string")
    if len(v) > limit or len(v.encode("utf-8")) > limit:
        raise Malformed(field, "longer than %d bytes" % limit)
    return v


def _check(v, kind, field):
    if kind == STR:
        return _check_str(v, field)
    if kind == INT:
        if not _is_int(v) or not -2 ** 63 <= v < 2 ** 63:
            raise Malformed(field, "expected an integer")
        return v
    if kind == BOOL:
        if not isinstance(v, bool):
            raise Malformed(field, "expected true or false")
        return v
    if not isinstance(v, list):
        raise Malformed(field, "expected an array of strings")
    if len(v) > STRS_MAX:
        raise Malformed(field, "more than %d items" % STRS_MAX)
    return [_check_str(x, field) for x in v]


_DROP = object()


def _plain(v, depth):
    """A field this client does not know, kept for the JSON line when JSON can
    hold it (bytes, extension types, NaN and deep nesting are dropped)."""
    if v is None or isinstance(v, (bool, int, str)):
        if _is_int(v) and not -2 ** 63 <= v < 2 ** 64:
            return _DROP
        if isinstance(v, str) and "\x00" in v:
            return _DROP
        return v
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else _DROP
    if depth >= DEPTH_MAX:
        return _DROP
    if isinstance(v, list):
        return [x for x in (_plain(x, depth + 1) for x in v) if x is not _DROP]
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            x = _plain(x, depth + 1)
            if isinstance(k, str) and x is not _DROP:
                out[k] = x
        return out
    return _DROP


def decode(frame):
    """One frame from the gateway -> the envelope as a dict (keys in wire
    order, body checked against BODIES), or Malformed. A type not in
    BODIES comes back with "unknown": True and its body unchecked (a newer
    gateway's message: the caller passes it over)."""
    if not isinstance(frame, bytes) or not 0 < len(frame) <= FRAME_MAX:
        raise Malformed("frame", "%d bytes, limit %d" % (len(frame), FRAME_MAX))
    try:
        m = msgpack.unpackb(frame, raw=False, strict_map_key=True, use_list=True)
    except Exception as e:  # any way msgpack can fail: truncated, extra data, nesting, UTF-8
        raise Malformed("envelope", "not one msgpack map (%s)" % type(e).__name__)
    if not isinstance(m, dict) or not all(isinstance(k, str) for k in m):
        raise Malformed("envelope", "expected a map with string keys")
    v = m.get("v")
    if not _is_int(v) or v < 1:
        raise Malformed("v", "expected a positive integer")
    if v > 1:
        raise Malformed("v", "schema version %d, this client reads 1" % min(v, 2 ** 64))
    out = {"v": v}
    out["type"] = _check_str(m.get("type"), "type", 64)
    out["id"] = _check_str(m.get("id"), "id", ID_MAX)
    out["stream"] = _check_str(m.get("stream"), "stream", NAME_MAX)
    seq = m.get("seq")
    if not _is_int(seq) or not 0 <= seq < 2 ** 64:
        raise Malformed("seq", "expected a non-negative integer")
    out["seq"] = seq
    out["ts"] = _check(m.get("ts"), INT, "ts")
    out["producer"] = _check_str(m.get("producer"), "producer", NAME_MAX)
    if m.get("corr") is not None:
        out["corr"] = _check_str(m["corr"], "corr", ID_MAX)
    body = m.get("body")
    if not isinstance(body, dict) or not all(isinstance(k, str) for k in body):
        raise Malformed("body", "expected a map with string keys")
    schema = BODIES.get(out["type"])
    if schema is None:
        out["body"] = {}
        out["unknown"] = True
        return out
    clean = {}
    for key, value in body.items():
        if value is None:
            continue  # nil is "absent"
        if key in schema:
            clean[key] = _check(value, schema[key][0], "body." + key)
        else:
            value = _plain(value, 0)
            if value is not _DROP:
                clean[key] = value
    for key, (_, required) in schema.items():
        if required and key not in clean:
            raise Malformed("body." + key, "required field is missing")
    out["body"] = clean
    return out


_JSON_ESCAPES = {i: "\\u%04x" % i for i in range(0x20)}
_JSON_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\"})


def to_json(v):
    """One line of JSON written the way crm-dealer writes it (UTF-8 as is,
    only quote, backslash and control characters escaped), so both clients
    print the same bytes for the same dispatch."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.translate(_JSON_ESCAPES) + '"'
    if isinstance(v, list):
        return "[" + ",".join(to_json(x) for x in v) + "]"
    return "{" + ",".join(to_json(k) + ":" + to_json(x) for k, x in v.items()) + "}"


class Ids:
    """Request ids: 16 random hex digits, '-', a counter (unique per request,
    far below the 63-byte limit)."""

    def __init__(self):
        self.prefix = os.urandom(8).hex()
        self.n = 0

    def next(self):
        self.n += 1
        return "%s-%x" % (self.prefix, self.n)


def request(kind, req_id, body):
    return msgpack.packb({"v": 1, "type": kind, "id": req_id, "stream": "", "seq": 0,
                          "ts": now_ms(), "producer": PRODUCER, "body": body},
                         use_bin_type=True)


# ------------------------------------------------------------------ certificates


def _z85_key(text, what, path):
    if not isinstance(text, str) or len(text) != 40:
        raise ValueError("%s: %s is not 40 characters of Z85" % (path, what))
    try:
        raw = z85.decode(text.encode("ascii"))
    except Exception:
        raise ValueError("%s: %s is not Z85" % (path, what))
    return text.encode("ascii"), raw


def read_cert(path):
    """A CZMQ certificate file (ZPL, Part 2 section 11) -> (metadata dict,
    public key, secret key or None), keys as 40-byte Z85."""
    with open(path, "rb") as f:
        data = f.read(CERT_FILE_MAX + 1)
    if len(data) > CERT_FILE_MAX:
        raise ValueError("%s: larger than %d bytes" % (path, CERT_FILE_MAX))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("%s: not UTF-8 text" % path)
    sections, section = {}, None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not line[0].isspace():
            section = sections.setdefault(stripped, {})
            continue
        if section is None or "=" not in stripped:
            raise ValueError('%s, line %d: expected name = "value" in a section' % (path, number))
        name, value = (part.strip() for part in stripped.split("=", 1))
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        section[name] = value
    curve = sections.get("curve", {})
    public, _ = _z85_key(curve.get("public-key"), "public-key", path)
    secret = None
    if "secret-key" in curve:
        secret, raw = _z85_key(curve["secret-key"], "secret-key", path)
        if raw == bytes(32):
            secret = None  # CZMQ writes a zero key for "no secret"
    return sections.get("metadata", {}), public, secret


# ------------------------------------------------------------------ state file


STATE_MAX = 64  # bytes in a state file: blanks, 1 to 20 digits, blanks


def read_state(path):
    """The last number applied; 0 when the file does not exist. Optional
    blanks, 1 to 20 digits (below 2^64), optional blanks, at most STATE_MAX
    bytes: anything else is refused (ValueError), as crm-dealer refuses it."""
    try:
        with open(path, "rb") as f:
            data = f.read(STATE_MAX + 1)
    except FileNotFoundError:
        return 0
    m = re.fullmatch(rb"[ \t\n\v\f\r]*([0-9]{1,20})[ \t\n\v\f\r]*", data)
    if len(data) > STATE_MAX or not m or int(m.group(1)) >= 2 ** 64:
        raise ValueError("a number expected")
    return int(m.group(1))


def write_state(path, number):
    """Written to FILE.tmp, fsynced and renamed: the file always holds a whole
    number, the old one or the new one."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        data = b"%d\n" % number
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


# ------------------------------------------------------------------ signals

_stop = False


def _on_signal(signum, frame):
    global _stop
    _stop = True


# ------------------------------------------------------------------ the feed


class Follower:
    """One dealer's stream, followed until stopped (or, with --once, until
    caught up). Handlers set state; `tick` decides what to send."""

    def __init__(self, opts, keys):
        self.o = opts
        self.public, self.secret, self.server = keys
        self.ctx = zmq.Context()
        self.ids = Ids()
        self.stream = "dealer." + opts.dealer
        self.topic = (self.stream + ":").encode()
        self.hb_prefix = self.stream + "="
        self.last = 0          # applied
        self.synced = 0        # in the state file
        self.synced_at = 0
        self.ack_done = 0      # answered: acknowledged (or refused for good)
        self.ack = None        # in flight: id, upto, data, deadline
        self.ack_sent_at = 0
        self.ack_retry_at = 0
        self.ack_backoff = 0
        self.replay = None     # in flight: id, deadline
        self.replay_retry_at = None
        self.replay_backoff = 0
        self.replay_fails = 0  # in a row, for --once
        self.caught_up = False
        self.blocked_until = 0  # an apply failed: wait before trying it again
        self.failed = False
        self.stopping = False
        self.next_poll = 0
        self.sub = self.req = None
        self.sub_alive_at = 0
        self.rc = None

    # -------------------------------------------------------------- sockets

    def _socket(self, kind, endpoint):
        s = self.ctx.socket(kind)
        s.curve_secretkey = self.secret
        s.curve_publickey = self.public
        s.curve_serverkey = self.server
        s.setsockopt(zmq.LINGER, 1000)
        s.setsockopt(zmq.MAXMSGSIZE, FRAME_MAX + 1024)
        if kind == zmq.SUB:
            s.setsockopt(zmq.SUBSCRIBE, self.topic)
        try:
            s.connect(endpoint)
        except zmq.ZMQError:
            s.close(0)
            raise
        return s

    def _poller(self):
        self.poller = zmq.Poller()
        self.poller.register(self.req, zmq.POLLIN)
        self.poller.register(self.sub, zmq.POLLIN)

    def open_sub(self):
        if self.sub is not None:
            self.sub.close(0)
        self.sub = self._socket(zmq.SUB, self.o.pub)
        self.sub_alive_at = mono_ms()
        self.sub_live = False

    def open_req(self):
        if self.req is not None:
            self.req.close(0)
        self.req = self._socket(zmq.DEALER, self.o.endpoint)

    def send(self, data):
        try:
            self.req.send(data, zmq.NOBLOCK)
        except zmq.Again:
            pass  # queue full: lost like any other; the timeout sends it again

    # -------------------------------------------------------------- requests

    def ask_replay(self):
        req_id = self.ids.next()
        self.send(request("dealer.replay", req_id, {"from": self.last + 1}))
        self.replay = {"id": req_id, "deadline": mono_ms() + self.o.timeout_ms}
        self.replay_retry_at = None
        log("info", "dealer.replay_asked", dealer=self.o.dealer, **{"from": self.last + 1})

    def _backoff(self, current):
        return BACKOFF_FIRST_MS if not current else min(current * 2, BACKOFF_MAX_MS)

    def maybe_sync(self, force=False):
        """--sync batch: the state file follows at most 100 dispatches or
        100 ms behind, and always before the ack that covers them."""
        if self.synced >= self.last:
            return
        now = mono_ms()
        if not force and self.last - self.synced < SYNC_EVERY_N and now - self.synced_at < SYNC_EVERY_MS:
            return
        try:
            write_state(self.o.state, self.last)
        except OSError as e:
            log("error", "dealer.state_not_written", dealer=self.o.dealer, file=self.o.state,
                why=e.strerror)
            self.rc = EXIT_NO
            return
        self.synced, self.synced_at = self.last, now

    def maybe_ack(self, force=False):
        now = mono_ms()
        upto = self.synced
        if self.ack is not None or upto <= self.ack_done or (not force and now < self.ack_retry_at):
            return
        if not force and now - self.ack_sent_at < ACK_EVERY_MS and upto - self.ack_done < ACK_EVERY_N:
            return
        req_id = self.ids.next()
        data = request("dealer.ack", req_id, {"upto": upto})
        self.ack = {"id": req_id, "upto": upto, "data": data, "deadline": now + self.o.timeout_ms}
        self.ack_sent_at = now
        self.send(data)

    def reopen_requests(self):
        """A request went unanswered: a fresh socket (new connection, new
        handshake), the ack with the same bytes, the replay from where we are."""
        log("warn", "dealer.no_answer", dealer=self.o.dealer, endpoint=self.o.endpoint,
            replay=bool(self.replay), ack=bool(self.ack))
        self.open_req()
        self._poller()
        now = mono_ms()
        if self.ack is not None:
            self.ack["deadline"] = now + self.o.timeout_ms
            self.send(self.ack["data"])
        if self.replay is not None:
            self.replay = None
            self.replay_fails += 1
            if self.o.once and self.replay_fails >= self.o.tries:
                self.rc = EXIT_NOANSWER
                return
            self.ask_replay()

    # -------------------------------------------------------------- receiving

    def apply(self, m, via):
        if m.get("unknown"):
            # Passed over, not applied: nothing for the dealer's system,
            # but the number counts, or the stream would stop here.
            log("warn", "dealer.unknown_type", dealer=self.o.dealer, seq=m["seq"], type=m["type"],
                hint="skipped; a newer client may know it")
            self.advance(m, via)
            return
        line = to_json(m).encode("utf-8") + b"\n"
        ok = True
        try:
            if self.o.exec:
                ok = subprocess.run(self.o.exec, shell=True, input=line).returncode == 0
            else:
                sys.stdout.buffer.write(line)
                sys.stdout.buffer.flush()
        except (OSError, ValueError, subprocess.SubprocessError):
            ok = False
        if not ok:
            log("warn", "dealer.apply_failed", dealer=self.o.dealer, seq=m["seq"],
                retry_ms=APPLY_RETRY_MS)
            self.blocked_until = mono_ms() + APPLY_RETRY_MS
            self.failed = True
            return
        self.advance(m, via)

    def advance(self, m, via):
        """m's number is applied: recorded (--sync each) and acknowledged."""
        if self.o.sync == "each":
            try:
                write_state(self.o.state, m["seq"])
            except OSError as e:
                # Applied but not recorded: stop here; the next start repeats it.
                log("error", "dealer.state_not_written", dealer=self.o.dealer, file=self.o.state,
                    why=e.strerror)
                self.rc = EXIT_NO
                return
            self.synced = m["seq"]
        self.last = m["seq"]
        log("debug", "dealer.applied", dealer=self.o.dealer, seq=m["seq"], via=via)
        self.maybe_sync()
        self.maybe_ack()

    def numbered(self, m):
        """A message that takes a number of our stream: one of STREAM_TYPES,
        or one of a type we do not know that carries our stream's name and a
        number (passed over when its turn comes)."""
        if m["type"] in STREAM_TYPES:
            return True
        return bool(m.get("unknown")) and m["stream"] == self.stream and m["seq"] > 0

    def on_dispatch(self, m, live):
        """A numbered message of our stream (dealer.dispatch,
        dealer.assigned, dealer.task, dealer.finding, or a type we do not
        know): dropped when applied, applied (or passed over) when next, a
        replay asked for when numbers are missing."""
        if m["stream"] != self.stream:
            log("warn", "dealer.unexpected", dealer=self.o.dealer, stream=m["stream"])
            return
        seq = m["seq"]
        if seq <= self.last:
            log("debug", "dealer.duplicate", dealer=self.o.dealer, seq=seq)
        elif self.stopping or self.rc is not None or self.blocked_until > mono_ms():
            pass  # stopping, or waiting to try the failed one again
        elif seq == self.last + 1:
            self.apply(m, "live" if live else "replay")
        elif live and self.replay is None and self.replay_retry_at is None:
            log("info", "dealer.gap", dealer=self.o.dealer, have=self.last, got=seq)
            self.ask_replay()

    def on_heartbeat(self, m):
        latest = None
        for entry in m["body"]["streams"]:
            if entry.startswith(self.hb_prefix) and NUMBER_RE.fullmatch(entry[len(self.hb_prefix):]):
                latest = int(entry[len(self.hb_prefix):])
        if latest is None:
            log("debug", "dealer.heartbeat_without_stream", dealer=self.o.dealer)
            return
        if (latest > self.last and self.replay is None and self.replay_retry_at is None
                and not self.blocked_until and not self.stopping):
            log("info", "dealer.behind", dealer=self.o.dealer, have=self.last, latest=latest)
            self.ask_replay()

    def on_replay_reply(self, body):
        now = mono_ms()
        self.replay = None
        self.next_poll = now + self.o.poll_ms
        if body["ok"]:
            self.replay_fails, self.replay_backoff = 0, 0
            last = body.get("last")
            log("info", "dealer.replayed", dealer=self.o.dealer, count=body.get("count", "-"),
                last=last if last is not None else "-", applied=self.last)
            if last is not None and last > self.last:
                if not self.blocked_until and not self.stopping:
                    self.ask_replay()  # pushes lost, or committed meanwhile
            else:
                self.caught_up = True
            return
        code = body.get("code", "-")
        if code == "below_retained":
            log("error", "dealer.below_retained", dealer=self.o.dealer, want=self.last + 1,
                first=body.get("first", "-"), last=body.get("last", "-"),
                hint="call the carmaker; see DEALERS.md section 7")
            self.rc = EXIT_GAP
            return
        self.replay_fails += 1
        if self.o.once and (code not in RETRY_CODES or self.replay_fails >= self.o.tries):
            log("error", "dealer.replay_refused", dealer=self.o.dealer, code=code,
                message=body.get("message", ""))
            self.rc = EXIT_NOANSWER if code in ("busy", "unavailable") else EXIT_NO
            return
        self.replay_backoff = self._backoff(self.replay_backoff)
        self.replay_retry_at = now + self.replay_backoff
        log("warn" if code in RETRY_CODES else "error", "dealer.replay_refused",
            dealer=self.o.dealer, code=code, message=body.get("message", ""),
            retry_ms=self.replay_backoff)

    def on_ack_reply(self, body):
        ack, self.ack = self.ack, None
        if body["ok"]:
            self.ack_done = max(self.ack_done, ack["upto"])
            self.ack_backoff = 0
            log("debug", "dealer.acked", dealer=self.o.dealer, upto=ack["upto"])
            return
        code = body.get("code", "-")
        if code in RETRY_CODES:
            self.ack_backoff = self._backoff(self.ack_backoff)
            self.ack_retry_at = mono_ms() + self.ack_backoff
            log("warn", "dealer.ack_refused", dealer=self.o.dealer, code=code,
                retry_ms=self.ack_backoff)
            return
        # beyond_last and the like: the same ack would get the same answer.
        self.ack_done = max(self.ack_done, ack["upto"])
        log("error", "dealer.ack_refused", dealer=self.o.dealer, code=code, upto=ack["upto"],
            message=body.get("message", ""))

    def on_reply(self, m):
        corr, body = m.get("corr", ""), m["body"]
        if self.replay is not None and corr == self.replay["id"]:
            self.on_replay_reply(body)
        elif self.ack is not None and corr == self.ack["id"]:
            self.on_ack_reply(body)
        elif corr == "":
            # The gateway could not read the request's id (or refused the
            # certificate first): it answers whatever is in flight.
            log("warn", "dealer.refused", dealer=self.o.dealer, code=body.get("code", "-"),
                message=body.get("message", ""))
            if not body["ok"] and body.get("code") in RETRY_CODES:
                if self.replay is not None:
                    self.on_replay_reply(body)
                if self.ack is not None:
                    self.on_ack_reply(body)
        else:
            log("debug", "dealer.stale_reply", dealer=self.o.dealer, corr=corr)

    def _touch_requests(self):
        """Replayed dispatches and answers queue on one connection: while any
        arrives, what is in flight is not lost, only behind them."""
        deadline = mono_ms() + self.o.timeout_ms
        if self.replay is not None:
            self.replay["deadline"] = deadline
        if self.ack is not None:
            self.ack["deadline"] = deadline

    def drain_req(self, finishing=False):
        for _ in range(DRAIN_MAX):
            if not finishing and (_stop or self.rc is not None):
                return
            try:
                frames = self.req.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) == 2 and frames[0] == b"":
                frames = frames[1:]  # a REQ-style delimiter: tolerated
            if len(frames) != 1:
                log("warn", "dealer.malformed", dealer=self.o.dealer, socket="requests",
                    field="frames", why="%d frames" % len(frames))
                continue
            try:
                m = decode(frames[0])
            except Malformed as e:
                log("warn", "dealer.malformed", dealer=self.o.dealer, socket="requests",
                    field=e.field, why=e.why)
                continue
            self._touch_requests()
            if self.numbered(m):
                self.on_dispatch(m, live=False)
            elif m["type"] == "dealer.reply":
                self.on_reply(m)
            else:
                log("warn", "dealer.unexpected", dealer=self.o.dealer, type=m["type"])

    def drain_sub(self):
        for _ in range(DRAIN_MAX):
            if _stop or self.rc is not None:
                return
            try:
                frames = self.sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) != 2 or frames[0] != self.topic:
                log("warn", "dealer.malformed", dealer=self.o.dealer, socket="live",
                    field="frames", why="not [topic, envelope] of this dealer")
                continue
            try:
                m = decode(frames[1])
            except Malformed as e:
                log("warn", "dealer.malformed", dealer=self.o.dealer, socket="live",
                    field=e.field, why=e.why)
                continue
            numbered = m["type"] != "heartbeat" and self.numbered(m)
            if m["type"] == "heartbeat" or numbered:
                self.sub_alive_at = mono_ms()
                if not self.sub_live:
                    log("info", "dealer.live", dealer=self.o.dealer, endpoint=self.o.pub)
                self.sub_live = True
            if m["type"] == "heartbeat":
                self.on_heartbeat(m)
            elif numbered:
                self.on_dispatch(m, live=True)
            else:
                log("warn", "dealer.unexpected", dealer=self.o.dealer, type=m["type"])

    # -------------------------------------------------------------- the loop

    def tick(self):
        self.maybe_sync()
        self.maybe_ack()
        if self.rc is not None:
            return
        if self.o.once and self.failed:
            self.rc = EXIT_NO
            return
        if self.o.once and self.caught_up:
            self.rc = EXIT_OK
            return
        now = mono_ms()
        if ((self.replay is not None and now > self.replay["deadline"])
                or (self.ack is not None and now > self.ack["deadline"])):
            self.reopen_requests()
            if self.rc is not None:
                return
        if self.replay is None:
            if self.replay_retry_at is not None:
                if now >= self.replay_retry_at:
                    self.ask_replay()
            elif self.blocked_until:
                if now >= self.blocked_until:
                    self.blocked_until = 0  # try the failed dispatch again
                    self.ask_replay()
            elif now >= self.next_poll:
                self.ask_replay()
        if not self.o.once and now - self.sub_alive_at > HEARTBEAT_TIMEOUT_MS:
            # No heartbeat: the subscription was refused or the connection is
            # dead without TCP knowing. A new socket subscribes afresh.
            log("info", "dealer.resubscribed", dealer=self.o.dealer,
                silent_ms=now - self.sub_alive_at)
            self.open_sub()
            self._poller()

    def finish(self):
        """What was applied goes into the state file and into a last
        acknowledgement, whose answer is awaited: one timeout after a signal,
        up to --tries with --once (same bytes on a fresh socket each time)."""
        self.stopping = True
        if self.synced < self.last:
            try:
                write_state(self.o.state, self.last)
                self.synced = self.last
            except OSError as e:
                log("error", "dealer.state_not_written", dealer=self.o.dealer, file=self.o.state,
                    why=e.strerror)
                self.rc = EXIT_NO
                return
        self.ack = None  # an ack still in flight is covered by the last one
        tries = self.o.tries if self.o.once and not _stop else 1
        for attempt in range(tries):
            if self.synced <= self.ack_done or (_stop and attempt > 0):
                break
            if self.ack is None:
                while mono_ms() < self.ack_retry_at and not _stop:
                    time.sleep(0.05)
                self.maybe_ack(force=True)
            else:
                self.open_req()
                self.ack["deadline"] = mono_ms() + self.o.timeout_ms
                self.send(self.ack["data"])
            while self.ack is not None and mono_ms() < self.ack["deadline"]:
                if self.req.poll(50, zmq.POLLIN):
                    self.drain_req(finishing=True)
        if self.synced > self.ack_done:
            log("warn", "dealer.ack_unanswered", dealer=self.o.dealer, upto=self.synced,
                hint="sent again at the next start")

    def run(self):
        try:
            self.last = read_state(self.o.state)
        except OSError as e:
            sys.stderr.write("crm_dealer.py: cannot read the state file %s (%s)\n" % (
                self.o.state, e.strerror))
            return EXIT_NO
        except ValueError as e:
            sys.stderr.write("crm_dealer.py: cannot read the state file %s (%s)\n" % (self.o.state, e))
            return EXIT_NO
        self.synced = self.last
        try:
            self.open_sub()
            self.open_req()
        except zmq.ZMQError as e:
            sys.stderr.write("crm_dealer.py: cannot connect to %s / %s: %s\n" % (
                self.o.pub, self.o.endpoint, e))
            return EXIT_NO
        self._poller()
        log("info", "dealer.start", dealer=self.o.dealer, last=self.last, sync=self.o.sync)
        self.ask_replay()
        while not _stop and self.rc is None:
            events = dict(self.poller.poll(50))
            if self.req in events:
                self.drain_req()
            if self.sub in events and self.rc is None:
                self.drain_sub()
            if not _stop:
                self.tick()
        self.finish()
        rc = EXIT_OK if self.rc is None else self.rc
        log("info", "dealer.stop", dealer=self.o.dealer, last=self.last, rc=rc)
        self.sub.close(0)
        self.req.close()
        self.ctx.term()
        return rc


# ------------------------------------------------------------------ one request


class Caller:
    """One request at a time, Lazy Pirate: the same bytes (same id) until
    answered. No answer within --timeout-ms: the bytes go again on a fresh
    socket (new connection, new CURVE handshake); busy, unavailable and
    not_certified wait (1 s, doubling up to 30 s) and send them again on a
    fresh socket; --tries sends in all. The socket is kept for the next
    request while it works."""

    def __init__(self, opts, keys):
        self.o = opts
        self.public, self.secret, self.server = keys
        self.ctx = zmq.Context()
        self.sock = None

    def _open(self):
        s = self.ctx.socket(zmq.DEALER)
        s.curve_secretkey, s.curve_publickey, s.curve_serverkey = self.secret, self.public, self.server
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.MAXMSGSIZE, FRAME_MAX + 1024)
        try:
            s.connect(self.o.endpoint)
        except zmq.ZMQError as e:
            s.close(0)
            log("error", "dealer.socket_failed", dealer=self.o.dealer, endpoint=self.o.endpoint,
                why=str(e))
            return None
        return s

    def close(self):
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None

    def call(self, data, req_id):
        """The last answer (a decoded dealer.reply), or None when none came.
        An answer with an empty corr answers the one request the socket
        carries."""
        reply, backoff = None, 0
        for attempt in range(self.o.tries):
            if _stop:
                break
            wake = mono_ms() + backoff
            while backoff and not _stop and mono_ms() < wake:
                time.sleep(0.05)
            if self.sock is None:
                self.sock = self._open()
                if self.sock is None:
                    break
            try:
                self.sock.send(data, zmq.NOBLOCK)
            except zmq.Again:
                pass  # a full queue is a lost send: the timeout sends again
            got = None
            deadline = mono_ms() + self.o.timeout_ms
            while got is None and not _stop and mono_ms() < deadline:
                if not self.sock.poll(min(100, max(1, deadline - mono_ms())), zmq.POLLIN):
                    continue
                frames = self.sock.recv_multipart()
                if len(frames) == 2 and frames[0] == b"":
                    frames = frames[1:]
                if len(frames) != 1:
                    continue
                try:
                    m = decode(frames[0])
                except Malformed as e:
                    log("warn", "dealer.malformed", dealer=self.o.dealer, socket="requests",
                        field=e.field, why=e.why)
                    continue
                if m["type"] == "dealer.reply" and m.get("corr", "") in (req_id, ""):
                    got = m  # else: an answer to a request given up on
            if got is None:
                self.close()
                backoff = 0
                log("warn", "dealer.no_answer", dealer=self.o.dealer, endpoint=self.o.endpoint,
                    attempt=attempt + 1)
                continue
            reply = got
            code = got["body"].get("code")
            if got["body"]["ok"] or code not in RETRY_CODES:
                return reply
            self.close()  # a fresh handshake picks up a newly loaded certificate
            backoff = BACKOFF_FIRST_MS if not backoff else min(backoff * 2, BACKOFF_MAX_MS)
            log("warn", "dealer.refused", dealer=self.o.dealer, code=code, retry_ms=backoff)
        return reply

    def term(self):
        self.close()
        self.ctx.term()


# ------------------------------------------------------------------ status


def parse_at(text):
    """ "YYYY-MM-DD HH:MM" China Standard Time -> ms UTC, or None."""
    try:
        t = datetime.datetime.strptime(text, "%Y-%m-%d %H:%M")
    except ValueError:
        return None
    return int(t.replace(tzinfo=CST).timestamp()) * 1000


def run_status(opts, keys, testdrive, status):
    """One status report (Caller); the last answer is printed."""
    body = {"testdrive_id": testdrive, "status": status}
    if opts.at is not None:
        at = parse_at(opts.at)
        if at is None:
            sys.stderr.write('crm_dealer.py: --at "%s": expected "YYYY-MM-DD HH:MM"\n' % opts.at)
            return EXIT_USAGE
        body["at"] = at
    if opts.note is not None:
        body["note"] = opts.note
    req_id = Ids().next()
    caller = Caller(opts, keys)
    reply = caller.call(request("dealer.status", req_id, body), req_id)
    caller.term()
    if reply is None:
        sys.stderr.write("crm_dealer.py: no answer from %s\n" % opts.endpoint)
        return EXIT_NOANSWER
    sys.stdout.buffer.write(to_json(reply).encode("utf-8") + b"\n")
    sys.stdout.buffer.flush()
    if reply["body"]["ok"]:
        return EXIT_OK
    return EXIT_NOANSWER if reply["body"].get("code") in ("busy", "unavailable") else EXIT_NO


# ------------------------------------------------------------------ send

BLANKS = b" \t\n\v\f\r"
FILE_MAX = 1 << 30


def _pairs(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError("duplicate key %r" % key[:40])
        out[key] = value
    return out


def _no_constant(name):
    raise ValueError("%s is not JSON" % name)


def _int(text):
    v = int(text)
    if not -2 ** 63 <= v < 2 ** 63:
        raise ValueError("integer out of range")
    return v


def _float(text):
    v = float(text)
    if v in (float("inf"), float("-inf")):
        raise ValueError("real number overflow")
    return v


def loads(data):
    """JSON bytes -> value, as strictly as crm-dealer reads them (no
    duplicate keys, no NaN, integers of 64 bits, no number beyond a
    double); ValueError otherwise."""
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=_pairs,
                          parse_constant=_no_constant, parse_int=_int, parse_float=_float)
    except (UnicodeDecodeError, RecursionError) as e:
        raise ValueError(str(e)[:160])


def _text(v, field, errs):
    """A JSON string fit for a body string, or None (with the error added)."""
    if not isinstance(v, str):
        errs.append((field, "invalid", "a string expected"))
        return None
    if "\x00" in v:
        errs.append((field, "invalid", "NUL in a string"))
        return None
    try:
        n = len(v.encode("utf-8"))
    except UnicodeEncodeError:
        errs.append((field, "invalid", "not valid Unicode"))
        return None
    if n > STR_MAX:
        errs.append((field, "too_long", "over %d bytes" % STR_MAX))
        return None
    return v


def _field(v, kind, field, errs):
    """A body value from a JSON value of field type `kind`, or None."""
    if kind == INT:
        if not _is_int(v):
            errs.append((field, "invalid", "an integer expected"))
            return None
        if not -I64_TEXT_MAX <= v <= I64_TEXT_MAX:
            errs.append((field, "invalid", "an integer of at most 18 digits expected"))
            return None
        return v
    if kind == BOOL:
        if not isinstance(v, bool):
            errs.append((field, "invalid", "true or false expected"))
            return None
        return v
    if kind == STRS:
        if not isinstance(v, list):
            errs.append((field, "invalid", "an array of strings expected"))
            return None
        if len(v) > STRS_MAX:
            errs.append((field, "too_long", "more than %d entries" % STRS_MAX))
            return None
        if not all(isinstance(x, str) for x in v):
            errs.append((field, "invalid", "an array of strings expected"))
            return None
        out = []
        for x in v:
            x = _text(x, field, errs)
            if x is None:
                return None
            out.append(x)
        return out
    return _text(v, field, errs)


def build_body(dealer, schema, type_name, record, obj):
    """A JSON object -> (body, errors), errors as (field, code, text): the
    fields typed by the schema, unknown fields dropped with a warning,
    record_id never made up."""
    errs = []
    if not isinstance(obj, dict):
        return None, [("record", "invalid", "not a JSON object")]
    body = {}
    for key, value in obj.items():
        if value is None:
            continue  # absent
        if key not in schema:
            log("warn", "dealer.field_dropped", dealer=dealer, record=record, field=key,
                hint="not a field of %s" % type_name)
            continue
        value = _field(value, schema[key][0], key, errs)
        if value is not None:
            body[key] = value
    # Never made up: the dealer's own id is what makes a resend harmless.
    if obj.get("record_id") is None or obj.get("record_id") == "":
        errs.insert(0, ("record_id", "required",
                        "required: the dealer's own id of this record (the same id on every resend)"))
    failed = {e[0] for e in errs}
    for key, (_, required) in schema.items():
        if required and key != "record_id" and key not in body and key not in failed:
            errs.append((key, "required", "required"))
    return body, errs


def record_line(record, line, record_id, body, errors=None):
    """The line for one record, as crm-dealer writes it."""
    out = {"record": record}
    if line:
        out["line"] = line
    if record_id is not None:
        out["record_id"] = record_id
    out["ok"] = body["ok"]
    for key in ("code", "message", "id", "customer_id", "created", "count"):
        if key in body:
            out[key] = body[key]
    if body.get("findings"):
        out["findings"] = body["findings"]
    errors = errors if errors is not None else body.get("errors")
    if errors:
        out["errors"] = errors
    sys.stdout.buffer.write(to_json(out).encode("utf-8") + b"\n")
    sys.stdout.buffer.flush()


class Sender:
    def __init__(self, opts, keys, kind):
        self.o = opts
        self.type_name, self.schema = UPLINK[kind]
        self.kind = kind
        self.caller = Caller(opts, keys)
        self.ids = Ids()
        self.records = self.stored = self.refused = 0
        self.stop = None  # (exit code, why): nothing more is sent

    def one(self, record, line, obj):
        """One record (obj None: a line that is not JSON): checked, sent,
        its line written."""
        self.records += 1
        if obj is None:
            body, errs = None, [("record", "invalid", "not valid JSON")]
        else:
            body, errs = build_body(self.o.dealer, self.schema, self.type_name, record, obj)
        rid = obj.get("record_id") if isinstance(obj, dict) else None
        record_id = rid if isinstance(rid, str) and rid and "\x00" not in rid else None
        if errs:
            field, code, text = errs[0]
            record_line(record, line, record_id,
                        {"ok": False, "code": code, "message": "%s: %s" % (field, text)},
                        ["%s|%s|%s" % e for e in errs])
            log("warn", "dealer.record_not_sent", dealer=self.o.dealer, record=record, field=field,
                code=code)
            self.refused += 1
            return
        req_id = self.ids.next()
        frame = request(self.type_name, req_id, body)
        if len(frame) > FRAME_MAX:
            # the gateway drops a frame over its limit unanswered: refused
            # here, and the records after it go on
            text = "the record is over the 256 KiB of one request"
            record_line(record, line, record_id,
                        {"ok": False, "code": "too_long", "message": "record: " + text},
                        ["record|too_long|" + text])
            log("warn", "dealer.record_not_sent", dealer=self.o.dealer, record=record, field="record",
                code="too_long")
            self.refused += 1
            return
        reply = self.caller.call(frame, req_id)
        if reply is None:
            record_line(record, line, record_id,
                        {"ok": False, "code": "no_answer",
                         "message": "no answer from %s after %d tries" % (self.o.endpoint, self.o.tries)})
            self.stop = (EXIT_NOANSWER, "the gateway did not answer")
            return
        answer = reply["body"]
        record_line(record, line, record_id, answer)
        code = answer.get("code")
        if answer["ok"]:
            self.stored += 1
        elif code in RETRY_CODES:
            # still busy, unavailable or not certified after --tries
            self.stop = (EXIT_NO if code == "not_certified" else EXIT_NOANSWER,
                         "the gateway still answers %s" % code)
        else:
            self.refused += 1


def _blank(data):
    return not data.strip(BLANKS)


def run_send(opts, keys, kind, path):
    """crm_dealer.py send KIND FILE: one object, an array of objects, or JSON
    lines (one object a line); "-" is stdin."""
    if kind not in UPLINK:
        sys.stderr.write("crm_dealer.py: send: KIND is one of %s\n" % " ".join(UPLINK))
        return EXIT_USAGE
    try:
        if path == "-":
            data = sys.stdin.buffer.read(FILE_MAX + 1)
        else:
            with open(path, "rb") as f:
                data = f.read(FILE_MAX + 1)
        if len(data) > FILE_MAX:
            raise OSError(27, "File too large")
    except OSError as e:
        sys.stderr.write("crm_dealer.py: cannot read %s (%s)\n" % (path, e.strerror))
        return EXIT_USAGE
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
        data = data[3:]
    whole, lines = None, True
    if not _blank(data):
        try:
            whole, lines = loads(data), False
        except ValueError as e:
            why = str(e)
            first = next((x for x in data.split(b"\n") if not _blank(x)), b"")
            try:
                lines = isinstance(loads(first), dict)
            except ValueError:
                lines = False
            if not lines:
                sys.stderr.write("crm_dealer.py: %s: not JSON (%s); expected one object, an array "
                                 "of objects or one object a line\n" % (path, why))
                return EXIT_USAGE
        if not lines and not isinstance(whole, (dict, list)):
            sys.stderr.write("crm_dealer.py: %s: expected one object, an array of objects or one "
                             "object a line\n" % path)
            return EXIT_USAGE
    s = Sender(opts, keys, kind)
    if lines:
        record = 0
        for number, text in enumerate(data.split(b"\n"), 1):
            if s.stop or _stop:
                break
            if _blank(text):
                continue
            try:
                obj = loads(text)
            except ValueError as e:
                log("warn", "dealer.not_json", dealer=opts.dealer, line=number, why=str(e))
                obj = None
            record += 1
            s.one(record, number, obj)
    elif isinstance(whole, dict):
        s.one(1, 0, whole)
    else:
        for i, obj in enumerate(whole, 1):
            if s.stop or _stop:
                break
            s.one(i, 0, obj)
    s.caller.term()
    log("info", "dealer.sent", dealer=opts.dealer, kind=kind, records=s.records, stored=s.stored,
        refused=s.refused)
    if s.stop or _stop:
        sys.stderr.write("crm_dealer.py: stopped at record %d: %s; what follows was not sent (sending "
                         "the whole file again is safe: a record_id already stored gets its first "
                         "answer)\n" % (s.records, "interrupted" if _stop else s.stop[1]))
        return EXIT_NOANSWER if _stop else s.stop[0]
    return EXIT_NO if s.refused else EXIT_OK


# ------------------------------------------------------------------ main


def parse_args(argv):
    env = os.environ.get
    p = argparse.ArgumentParser(prog="crm_dealer.py", description=SUMMARY, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dealer", default=env("CRM_DEALER_ID"),
                   help="this dealer's id, as in its certificate (CRM_DEALER_ID)")
    p.add_argument("--cert", default=env("CRM_DEALER_CERT"),
                   help="this dealer's secret certificate file (CRM_DEALER_CERT)")
    p.add_argument("--server-cert", default=env("CRM_DEALER_SERVER_CERT"),
                   help="the gateway's public certificate file (CRM_DEALER_SERVER_CERT)")
    p.add_argument("--state", default=env("CRM_DEALER_STATE"),
                   help="file keeping the last applied number, created if missing (CRM_DEALER_STATE)")
    p.add_argument("--endpoint", default=env("CRM_DEALER_ENDPOINT", "tcp://127.0.0.1:7302"),
                   help="the gateway's request endpoint: replay, ack, status (CRM_DEALER_ENDPOINT)")
    p.add_argument("--pub", default=env("CRM_DEALER_PUB", "tcp://127.0.0.1:7301"),
                   help="the gateway's live endpoint: pushes, heartbeats (CRM_DEALER_PUB)")
    p.add_argument("--exec", default=env("CRM_DEALER_EXEC"),
                   help="command run per dispatch with its JSON line on stdin; default: print "
                        "it on stdout (CRM_DEALER_EXEC)")
    p.add_argument("--once", action="store_true", default=env("CRM_DEALER_ONCE") == "1",
                   help="exit once caught up (CRM_DEALER_ONCE=1)")
    p.add_argument("--sync", default=env("CRM_DEALER_SYNC", "each"),
                   help="each: the state file is written (fsync) after every dispatch, so a "
                        "crash repeats at most the one in hand; batch: every 100 dispatches or "
                        "100 ms, so a crash may repeat up to 100 (CRM_DEALER_SYNC)")
    p.add_argument("--poll-ms", type=int, default=env("CRM_DEALER_POLL_MS", "30000"),
                   help="ask for a replay this often when nothing else made it ask (CRM_DEALER_POLL_MS)")
    p.add_argument("--timeout-ms", type=int, default=env("CRM_TIMEOUT_MS", "3000"),
                   help="how long to wait for an answer (CRM_TIMEOUT_MS)")
    p.add_argument("--tries", type=int, default=env("CRM_TRIES", "3"),
                   help="how often to send before giving up, where giving up is allowed: --once, "
                        "status, send (CRM_TRIES)")
    p.add_argument("--at", help='status: agreed or new time, "YYYY-MM-DD HH:MM" China time')
    p.add_argument("--note", help="status: free text")
    p.add_argument("--log-level", default=env("CRM_LOG_LEVEL", "info"),
                   help="debug, info, warn or error (CRM_LOG_LEVEL)")
    p.add_argument("--version", action="version", version="crm_dealer.py " + VERSION)
    p.add_argument("command", nargs="*",
                   help="nothing (follow the stream), status TESTDRIVE_ID STATUS, or send KIND FILE")
    o = p.parse_intermixed_args(argv)

    def bad(text):
        sys.stderr.write("crm_dealer.py: %s; try --help\n" % text)
        sys.exit(EXIT_USAGE)

    status = len(o.command) == 3 and o.command[0] == "status"
    send = len(o.command) == 3 and o.command[0] == "send"
    if o.command and not status and not send:
        bad("unexpected arguments %s" % " ".join(o.command))
    if not o.dealer or not o.cert or not o.server_cert or (not status and not send and not o.state):
        bad("--dealer, --cert, --server-cert and (to follow the stream) --state are needed")
    if not ID_RE.fullmatch(o.dealer):
        bad("--dealer: 1 to 32 letters, digits, '_' or '-'")
    if o.sync not in ("each", "batch"):
        bad("--sync is each or batch")
    if o.log_level not in LEVELS:
        bad("--log-level is debug, info, warn or error")
    for name, low, high in (("timeout_ms", 1, 3600000), ("tries", 1, 100),
                            ("poll_ms", 100, 86400000)):
        if not low <= getattr(o, name) <= high:
            bad("--%s: %d to %d" % (name.replace("_", "-"), low, high))
    o.status = o.command[1:] if status else None
    o.send = o.command[1:] if send else None
    return o


def main(argv):
    global _log_level
    o = parse_args(argv)
    _log_level = LEVELS[o.log_level]
    try:
        meta, public, secret = read_cert(o.cert)
        _, server, _ = read_cert(o.server_cert)
    except (OSError, ValueError) as e:
        sys.stderr.write("crm_dealer.py: cannot use the certificates: %s\n" % e)
        return EXIT_NO
    if secret is None:
        sys.stderr.write("crm_dealer.py: %s is not a secret certificate\n" % o.cert)
        return EXIT_NO
    if meta.get("dealer-id", o.dealer) != o.dealer:
        sys.stderr.write("crm_dealer.py: %s is the certificate of dealer %s, not %s\n" % (
            o.cert, meta["dealer-id"], o.dealer))
        return EXIT_NO
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    keys = (public, secret, server)
    if o.status:
        return run_status(o, keys, o.status[0], o.status[1])
    if o.send:
        return run_send(o, keys, o.send[0], o.send[1])
    return Follower(o, keys).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
