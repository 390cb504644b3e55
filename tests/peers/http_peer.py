#!/usr/bin/python3
"""Fake HTTP peer for crm-notifier tests: an Aliyun-shaped SMS gateway plus
dealer webhook endpoints, with a control API that lets a test inject faults
and delivery reports / replies.

One asyncio HTTP/1.1 server built on asyncio streams with a small parser of
its own (request line, headers, Content-Length bodies).  HTTP/1.1 connections
are kept alive unless the client sends ``Connection: close``;
``Expect: 100-continue`` is answered before the body is read; chunked request
bodies are refused with 411.

Every request is logged as one JSON line (see README.md).  Log lines are
buffered and flushed at least every 50 ms and on exit, so the peer stays fast
(thousands of keep-alive requests per second on one core).

Run:  /usr/bin/python3 http_peer.py --port 0 --port-file p.txt --log log.jsonl
Stops on SIGTERM/SIGINT, flushing the log, with exit status 0.
"""

import argparse
import asyncio
import base64
import json
import re
import signal
import sys
import time
import uuid
from urllib.parse import parse_qsl, urlsplit

from peerlib import write_port_file

REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 202: "Accepted",
    204: "No Content", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 409: "Conflict", 411: "Length Required",
    413: "Payload Too Large", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}

MAX_HEADER_BYTES = 1 << 20          # StreamReader limit for the head
FLUSH_INTERVAL_S = 0.05              # log flush period (spec: <= 100 ms)
SEND_DATE_RE = re.compile(r"^\d{8}$")


def now_str(ts=None):
    """Return local time as 'YYYY-MM-DD HH:MM:SS' (Aliyun's format)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


class Drop(Exception):
    """Raised by a handler to close the connection without answering."""


class Response:
    """A response to send: status, extra headers and a bytes body."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status, body=b"", headers=None):
        self.status = status
        self.body = body
        self.headers = headers or {}


def json_response(obj, status=200):
    """Build a JSON response (UTF-8, non-ASCII kept as is)."""
    data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return Response(status, data,
                    {"Content-Type": "application/json; charset=utf-8"})


class Log:
    """Buffered JSON-lines log.  ``add`` queues a line; ``flush`` writes."""

    def __init__(self, path, with_body):
        self.f = open(path, "a", encoding="utf-8") if path else None
        self.with_body = with_body
        self.buf = []

    def add(self, entry):
        if self.f is not None:
            self.buf.append(json.dumps(entry, ensure_ascii=False))

    def flush(self):
        if self.f is not None and self.buf:
            self.f.write("\n".join(self.buf) + "\n")
            self.buf.clear()
            self.f.flush()

    def close(self):
        self.flush()
        if self.f is not None:
            self.f.close()
            self.f = None


class State:
    """All peer state: stored SMS, the report/reply sequence, faults, stats."""

    def __init__(self, auto_reports):
        self.auto_reports = auto_reports
        self.messages = []      # stored SMS (dicts)
        self.events = []        # ("report"|"reply", dict), never forgotten
        self.faults = []        # dicts in insertion order; "count" decremented
        self.stats = {}         # path without query -> count
        self.biz_seq = 0
        self.reply_seq = 0

    # ---- faults -------------------------------------------------------
    def take_fault(self, path):
        """Return the first fault whose prefix matches ``path`` and that has
        count left (consuming one use), or None."""
        for f in self.faults:
            if f["count"] != 0 and path.startswith(f["prefix"]):
                if f["count"] > 0:
                    f["count"] -= 1
                return f
        return None

    # ---- reports / replies --------------------------------------------
    def queue_report(self, msg, success=True, err_code="DELIVERED",
                     err_msg=None):
        t = now_str()
        self.events.append(("report", {
            "phone_number": msg.get("phone_number", ""),
            "send_time": msg.get("send_time", t),
            "report_time": t,
            "success": bool(success),
            "err_code": err_code,
            "err_msg": err_msg if err_msg is not None else
            ("用户接收成功" if success else err_code),
            "sms_size": "1",
            "biz_id": msg.get("biz_id", ""),
            "out_id": msg.get("out_id", ""),
        }))


def form_params(req):
    """Merge query-string and urlencoded-body parameters (body wins)."""
    params = dict(parse_qsl(req.query, keep_blank_values=True))
    if req.body:
        params.update(parse_qsl(req.body.decode("utf-8", "replace"),
                                keep_blank_values=True))
    return params


def aliyun_error(code, message):
    return json_response({"Code": code, "Message": message,
                          "RequestId": str(uuid.uuid4()).upper()})


class Request:
    """A parsed request."""

    __slots__ = ("method", "target", "path", "query", "version", "headers",
                 "body")


class Peer:
    """Routes requests to the SMS gateway, webhook and control handlers."""

    def __init__(self, state, log):
        self.st = state
        self.log = log

    # ---- routing --------------------------------------------------------
    async def handle(self, req):
        """Return a Response for ``req``; may raise Drop."""
        path = req.path
        if path.startswith("/_ctl/"):
            return self.control(req)
        st = self.st
        st.stats[path] = st.stats.get(path, 0) + 1
        fault = st.take_fault(path) if st.faults else None
        if fault is not None:
            mode = fault["mode"]
            if mode == "drop":
                raise Drop()
            if mode == "aliyun":
                return aliyun_error(fault.get("code", "isv.BUSINESS_LIMIT_CONTROL"),
                                    fault.get("message", "触发流控"))
            if mode == "slow":
                await asyncio.sleep(fault.get("delay_ms", 1000) / 1000.0)
            if mode == "status" or (mode == "slow" and "status" in fault):
                body = fault.get("body", "")
                if isinstance(body, str):
                    body = body.encode("utf-8")
                elif not isinstance(body, bytes):
                    body = json.dumps(body).encode("utf-8")
                return Response(int(fault.get("status", 503)), body,
                                dict(fault.get("headers") or {}))
        return self.route(req)

    def route(self, req):
        path, m = req.path, req.method
        if path.startswith("/hook/"):
            return Response(204)
        if path == "/sms/send":
            return self.sms_send(req) if m == "POST" else Response(405)
        if path == "/sms/query":
            return self.sms_query(req) if m == "POST" else Response(405)
        if path == "/sms/pull":
            return self.sms_pull(req) if m == "GET" else Response(405)
        return Response(404, b"not found\n", {"Content-Type": "text/plain"})

    # ---- SMS gateway ----------------------------------------------------
    def sms_send(self, req):
        p = form_params(req)
        missing = [k for k in ("PhoneNumbers", "SignName", "TemplateCode")
                   if not p.get(k)]
        if missing:
            return aliyun_error("isv.INVALID_PARAMETERS",
                                "missing parameter: " + ",".join(missing))
        tp_raw = p.get("TemplateParam", "")
        params = {}
        if tp_raw != "":
            try:
                params = json.loads(tp_raw)
            except ValueError:
                params = None
            if not isinstance(params, dict) or not all(
                    isinstance(v, str) for v in params.values()):
                return aliyun_error("isv.INVALID_JSON_PARAM",
                                    "JSON参数不合法，只接受字符串值")
        st = self.st
        st.biz_seq += 1
        biz_id = "900000%d^0" % st.biz_seq
        t = now_str()
        for phone in [x.strip() for x in p["PhoneNumbers"].split(",") if x.strip()]:
            msg = {"phone_number": phone, "sign_name": p["SignName"],
                   "template_code": p["TemplateCode"], "template_param": params,
                   "template_param_raw": tp_raw, "out_id": p.get("OutId", ""),
                   "biz_id": biz_id, "send_time": t,
                   "t_ms": int(time.time() * 1000)}
            st.messages.append(msg)
            if st.auto_reports:
                st.queue_report(msg)
        return json_response({"Code": "OK", "Message": "OK", "BizId": biz_id,
                              "RequestId": str(uuid.uuid4()).upper()})

    def sms_query(self, req):
        p = form_params(req)
        phone = p.get("PhoneNumber", "")
        if not phone:
            return aliyun_error("isv.INVALID_PARAMETERS", "PhoneNumber missing")
        if not SEND_DATE_RE.match(p.get("SendDate", "")):
            return aliyun_error("isv.INVALID_PARAMETERS", "SendDate must be yyyyMMdd")
        try:
            size = int(p.get("PageSize", "10"))
            page = int(p.get("CurrentPage", "1"))
        except ValueError:
            return aliyun_error("isv.INVALID_PARAMETERS", "bad PageSize/CurrentPage")
        if not 1 <= size <= 50 or page < 1:
            return aliyun_error("isv.INVALID_PARAMETERS", "bad PageSize/CurrentPage")
        biz = p.get("BizId")
        hits = [m for m in self.st.messages if m["phone_number"] == phone
                and (not biz or m["biz_id"] == biz)]
        dtos = [{"PhoneNum": m["phone_number"], "SendStatus": 3,
                 "ErrCode": "DELIVERED", "TemplateCode": m["template_code"],
                 "Content": m["template_param_raw"] or "{}",
                 "SendDate": m["send_time"], "ReceiveDate": m["send_time"],
                 "OutId": m["out_id"]}
                for m in hits[(page - 1) * size: page * size]]
        return json_response({"Code": "OK", "Message": "OK",
                              "RequestId": str(uuid.uuid4()).upper(),
                              "TotalCount": len(hits),
                              "SmsSendDetailDTOs": {"SmsSendDetailDTO": dtos}})

    def sms_pull(self, req):
        q = dict(parse_qsl(req.query, keep_blank_values=True))
        try:
            cursor = int(q.get("cursor", "0") or 0)
            limit = int(q.get("limit", "100") or 100)
        except ValueError:
            return json_response({"error": "cursor/limit must be integers"}, 400)
        if cursor < 0 or limit < 1:
            return json_response({"error": "cursor >= 0, limit >= 1"}, 400)
        limit = min(limit, 1000)
        chunk = self.st.events[cursor: cursor + limit]
        return json_response({
            "cursor": cursor + len(chunk),
            "reports": [e for k, e in chunk if k == "report"],
            "replies": [e for k, e in chunk if k == "reply"],
        })

    # ---- control API ----------------------------------------------------
    def control(self, req):
        st, path = self.st, req.path
        if path == "/_ctl/stats":
            return json_response({"requests": st.stats,
                                  "sms_sent": len(st.messages)})
        if path == "/_ctl/messages":
            return json_response(st.messages)
        if path == "/_ctl/clear":
            st.faults.clear()
            return json_response({"ok": True})
        if req.method != "POST":
            return Response(405)
        try:
            obj = json.loads(req.body.decode("utf-8") or "{}")
            if not isinstance(obj, dict):
                raise ValueError("expected a JSON object")
        except ValueError as e:
            return json_response({"ok": False, "error": "bad JSON: %s" % e}, 400)
        if path == "/_ctl/fault":
            mode = obj.get("mode")
            if mode not in ("status", "slow", "drop", "aliyun") or \
                    not isinstance(obj.get("prefix"), str):
                return json_response({"ok": False, "error": "need prefix and "
                                      "mode status|slow|drop|aliyun"}, 400)
            f = dict(obj)
            f["count"] = int(obj.get("count", 1))
            st.faults.append(f)
            return json_response({"ok": True})
        if path == "/_ctl/reply":
            st.reply_seq += 1
            st.events.append(("reply", {
                "phone_number": str(obj.get("phone_number", "")),
                "send_time": obj.get("send_time") or now_str(),
                "content": str(obj.get("content", "")),
                "sign_name": obj.get("sign_name", ""),
                "dest_code": "",
                "sequence_id": st.reply_seq,
            }))
            return json_response({"ok": True})
        if path == "/_ctl/report":
            out_id, biz_id = obj.get("out_id", ""), obj.get("biz_id")
            found = None
            for m in reversed(st.messages):
                if (biz_id and m["biz_id"] == biz_id) or \
                        (not biz_id and out_id and m["out_id"] == out_id):
                    found = m
                    break
            msg = dict(found or {})
            for k in ("phone_number", "out_id", "biz_id"):
                if obj.get(k):
                    msg[k] = obj[k]
            success = bool(obj.get("success", True))
            st.queue_report(msg, success,
                            obj.get("err_code") or ("DELIVERED" if success else "UNDELIV"),
                            obj.get("err_msg"))
            return json_response({"ok": True})
        return Response(404)


def parse_head(head):
    """Parse the request line and headers (bytes up to CRLFCRLF).

    Returns a Request without body, or raises ValueError."""
    text = head.decode("latin-1")
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError("bad request line")
    req = Request()
    req.method, req.target, req.version = parts
    if "?" in req.target:
        req.path, req.query = req.target.split("?", 1)
    else:
        req.path, req.query = req.target, ""
    if not req.path.startswith("/"):          # absolute-form
        u = urlsplit(req.target)
        req.path, req.query = u.path or "/", u.query
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name[-1] in " \t":
            raise ValueError("bad header line")
        name = name.lower()
        value = value.strip(" \t")
        # header bytes were latin-1 decoded; re-decode as UTF-8 for the log
        try:
            value = value.encode("latin-1").decode("utf-8")
        except UnicodeDecodeError:
            pass
        headers[name] = headers[name] + ", " + value if name in headers else value
    req.headers = headers
    return req


def encode_response(resp, keep_alive):
    """Serialise a Response to bytes."""
    status = resp.status
    lines = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Status"))]
    has_body = status >= 200 and status not in (204, 304)
    for k, v in resp.headers.items():
        if k.lower() not in ("content-length", "connection"):
            lines.append("%s: %s" % (k, v))
    if has_body:
        lines.append("Content-Length: %d" % len(resp.body))
    if not keep_alive:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    return head + resp.body if has_body else head


class Server:
    """Connection handling: reads requests, calls the Peer, writes answers."""

    def __init__(self, peer, log):
        self.peer = peer
        self.log = log
        self.writers = set()

    async def client(self, reader, writer):
        self.writers.add(writer)
        try:
            await self.serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    async def serve(self, reader, writer):
        log, peer = self.log, self.peer
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            except asyncio.LimitOverrunError:
                writer.write(encode_response(Response(431), False))
                return
            t_ms = int(time.time() * 1000)
            head = head.lstrip(b"\r\n")   # tolerate stray CRLF between requests
            try:
                req = parse_head(head)
            except ValueError:
                writer.write(encode_response(Response(400, b"bad request\n"), False))
                return
            h = req.headers
            conn = h.get("connection", "").lower()
            if req.version == "HTTP/1.0":
                keep_alive = "keep-alive" in conn
            else:
                keep_alive = "close" not in conn
            if "transfer-encoding" in h:
                writer.write(encode_response(
                    Response(411, b"chunked bodies not supported\n"), False))
                self.log_req(log, t_ms, req, b"", 411)
                return
            try:
                length = int(h.get("content-length", "0"))
                if length < 0:
                    raise ValueError
            except ValueError:
                writer.write(encode_response(Response(400, b"bad content-length\n"), False))
                return
            if length:
                if h.get("expect", "").lower() == "100-continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                req.body = await reader.readexactly(length)
            else:
                req.body = b""
            try:
                resp = await peer.handle(req)
            except Drop:
                self.log_req(log, t_ms, req, req.body, 0, dropped=True)
                writer.transport.abort()
                return
            except Exception as e:   # a bug in the peer: say so, keep going
                resp = Response(500, ("peer error: %r\n" % e).encode())
            self.log_req(log, t_ms, req, req.body, resp.status)
            writer.write(encode_response(resp, keep_alive))
            await writer.drain()
            if not keep_alive:
                return

    @staticmethod
    def log_req(log, t_ms, req, body, status, dropped=False):
        if log.f is None:
            return
        e = {"t_ms": t_ms, "method": req.method, "path": req.target,
             "headers": req.headers}
        if log.with_body:
            e["body"] = body.decode("utf-8", "replace")
            e["body_b64"] = base64.b64encode(body).decode("ascii")
        e["status"] = status
        if dropped:
            e["dropped"] = True
        if req.path.startswith("/_ctl/"):
            e["control"] = True
        log.add(e)


async def main(args):
    log = Log(args.log, not args.no_log_body)
    state = State(args.auto_reports == "on")
    srv = Server(Peer(state, log), log)
    server = await asyncio.start_server(srv.client, args.host, args.port,
                                        limit=MAX_HEADER_BYTES, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        write_port_file(args.port_file, port)
    print("http_peer listening on %s:%d" % (args.host, port), file=sys.stderr)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def flusher():
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            log.flush()

    ft = asyncio.create_task(flusher())
    try:
        await stop.wait()
    finally:
        ft.cancel()
        server.close()
        for w in list(srv.writers):
            w.transport.abort()
        log.close()


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = any free port")
    ap.add_argument("--port-file", help="write the bound port here (atomically)")
    ap.add_argument("--log", help="JSON-lines request log")
    ap.add_argument("--no-log-body", action="store_true",
                    help="omit body/body_b64 from the log (benchmarks)")
    ap.add_argument("--auto-reports", choices=("on", "off"), default="on",
                    help="queue a DELIVERED report for every SMS sent")
    return ap.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
    sys.exit(0)
