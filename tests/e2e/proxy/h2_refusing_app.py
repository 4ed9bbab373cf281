#!/usr/bin/env python3
"""An h2c app that refuses streams the ways a draining or overloaded HTTP/2 server does, for
h2_retry.sh. Raw frames on purpose: it plays a misbehaving-on-purpose peer, not a general server.

  --mode rst     the first stream of every connection gets RST_STREAM(REFUSED_STREAM)
  --mode all     every stream gets RST_STREAM(REFUSED_STREAM)
  --mode goaway  the first connection answers its first request with GOAWAY(last-stream-id 0,
                 NO_ERROR) and nothing else; later connections are served

A served request is answered 200 with the body "conn=N stream=S body=<request body>". Prints
"listening on 127.0.0.1:PORT", then one line per event ("refused conn=N stream=S", "served ...").
"""
import argparse
import socket
import struct
import sys
import threading

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
REFUSED_STREAM = 7

lock = threading.Lock()
conn_count = 0


def log(line):
    with lock:
        print(line, flush=True)


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def serve(sock, n, mode):
    sock.settimeout(30)
    try:
        if read_exact(sock, len(PREFACE)) != PREFACE:
            return
        sock.sendall(frame(SETTINGS, 0, 0))
        first = None  # the first stream id this connection saw
        bodies = {}
        refused = set()
        while True:
            head = read_exact(sock, 9)
            length = int.from_bytes(head[:3], "big")
            ftype, flags = head[3], head[4]
            stream = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
            payload = read_exact(sock, length)
            if ftype == SETTINGS and not flags & ACK:
                sock.sendall(frame(SETTINGS, ACK, 0))
            elif ftype == PING and not flags & ACK:
                sock.sendall(frame(PING, ACK, 0, payload))
            elif ftype in (HEADERS, CONTINUATION):
                if mode == "all" and stream not in refused:
                    refused.add(stream)
                    sock.sendall(frame(RST_STREAM, 0, stream, struct.pack(">I", REFUSED_STREAM)))
                    log(f"refused conn={n} stream={stream}")
                if first is None:
                    first = stream
                    if mode == "rst":
                        refused.add(stream)
                        sock.sendall(frame(RST_STREAM, 0, stream, struct.pack(">I", REFUSED_STREAM)))
                        log(f"refused conn={n} stream={stream}")
                    elif mode == "goaway" and n == 1:
                        sock.sendall(frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0)))
                        log(f"goaway conn={n} stream={stream}")
                        refused.add(stream)
                bodies.setdefault(stream, b"")
            elif ftype == DATA:
                data = payload
                if flags & PADDED:
                    data = payload[1 : len(payload) - payload[0]]
                if length:
                    sock.sendall(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", length)))
                if stream not in refused:
                    bodies[stream] = bodies.get(stream, b"") + data
            if ftype in (HEADERS, DATA) and flags & END_STREAM and stream not in refused:
                body = b"conn=%d stream=%d body=%s" % (n, stream, bodies.pop(stream, b""))
                sock.sendall(frame(HEADERS, END_HEADERS, stream, b"\x88") + frame(DATA, END_STREAM, stream, body))
                log(f"served conn={n} stream={stream}")
    except (EOFError, OSError):
        pass
    finally:
        sock.close()


def main():
    global conn_count
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["rst", "all", "goaway"], required=True)
    args = ap.parse_args()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    print(f"listening on 127.0.0.1:{ls.getsockname()[1]}", flush=True)
    while True:
        sock, _ = ls.accept()
        with lock:
            conn_count += 1
            n = conn_count
        threading.Thread(target=serve, args=(sock, n, args.mode), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
