#!/usr/bin/env python3
# bench/dataplane/hold_conns.py — opens N idle client connections to 127.0.0.1:PORT (plain TCP,
# or mutual TLS with a client certificate) and holds them so the benchmark can read the server's
# RSS. Bounded: gives up after --connect-timeout seconds in total and exits after --hold seconds
# (or on SIGTERM). Prints one line "ready OPENED FAILED [first error]". With --h2 each connection
# becomes an idle HTTP/2 connection (ALPN h2 under TLS, prior knowledge otherwise): the client
# preface and SETTINGS sent, the server's SETTINGS read and acknowledged, no stream opened.
import argparse
import signal
import socket
import ssl
import sys
import threading
import time


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # empty SETTINGS
H2_SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"


def h2_open(s, tls):
    if tls and s.selected_alpn_protocol() != "h2":
        raise ConnectionError(f"ALPN chose {s.selected_alpn_protocol()!r}, not h2")
    s.sendall(H2_PREFACE + H2_SETTINGS)
    head = b""
    while len(head) < 9:  # the server's first frame must be its SETTINGS
        chunk = s.recv(9 - len(head))
        if not chunk:
            raise ConnectionError("closed before the server's SETTINGS")
        head += chunk
    if head[3] != 4:
        raise ConnectionError(f"first frame type {head[3]}, not SETTINGS")
    left = int.from_bytes(head[0:3], "big")
    while left > 0:
        chunk = s.recv(left)
        if not chunk:
            raise ConnectionError("closed inside the server's SETTINGS")
        left -= len(chunk)
    s.sendall(H2_SETTINGS_ACK)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--ca")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--connect-timeout", type=float, default=120.0)
    ap.add_argument("--hold", type=float, default=120.0)
    ap.add_argument("--h2", action="store_true")
    args = ap.parse_args()
    if args.count < 1 or args.count > 20000:
        sys.exit("hold_conns: --count must be 1..20000")

    ctx = None
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(args.cert, args.key)
        ctx.load_verify_locations(args.ca)
        # SVIDs carry a SPIFFE URI SAN and no DNS name; the chain is still verified.
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_REQUIRED
        if args.h2:
            ctx.set_alpn_protocols(["h2"])

    deadline = time.monotonic() + args.connect_timeout
    held = []
    errors = []
    lock = threading.Lock()
    per_thread = [args.count // args.threads + (1 if i < args.count % args.threads else 0) for i in range(args.threads)]

    def worker(n):
        for _ in range(n):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                with lock:
                    errors.append("connect deadline passed")
                return
            try:
                s = socket.create_connection(("127.0.0.1", args.port), timeout=min(remaining, 10.0))
                if ctx is not None:
                    s = ctx.wrap_socket(s)  # full handshake, client certificate sent
                if args.h2:
                    h2_open(s, ctx is not None)
                s.settimeout(None)
                with lock:
                    held.append(s)
            except Exception as e:  # noqa: BLE001 — any failure is counted and reported
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")
                    if len(errors) > 50:
                        return

    threads = [threading.Thread(target=worker, args=(n,)) for n in per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first = errors[0] if errors else ""
    print(f"ready {len(held)} {len(errors)} {first}".rstrip(), flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait(args.hold)
    for s in held:
        try:
            s.close()
        except OSError:
            pass


if __name__ == "__main__":
    main()
