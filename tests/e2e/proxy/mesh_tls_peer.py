#!/usr/bin/env python3
"""A TLS server holding a mesh certificate, standing in for a destination proxy that meshguard's
client proxy reaches over mTLS (client certificate required, chained to the mesh CA), for the TCP
metadata-exchange test. Port chosen by the kernel, printed as `listening on 127.0.0.1:PORT`.

  plain     selects no ALPN (an older or foreign proxy): reads one request, answers
            `HTTP/1.1 200 OK` with the body `plain peer`, closes.
  badframe  selects istio-peer-exchange, then writes bytes that are not a metadata frame.

usage: mesh_tls_peer.py MODE CERT KEY CA
"""
import socket
import ssl
import sys
import threading


def serve(conn, mode):
    try:
        conn.settimeout(10)
        conn.do_handshake()
        if mode == "badframe":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            conn.recv(4096)
            return
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        body = b"plain peer"
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
    except (ssl.SSLError, OSError) as e:
        sys.stderr.write("connection: %s\n" % e)
    finally:
        conn.close()


def main():
    mode, cert, key, ca = sys.argv[1:5]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(cert, key)
    context.load_verify_locations(ca)
    context.verify_mode = ssl.CERT_REQUIRED
    if mode == "badframe":
        context.set_alpn_protocols(["istio-peer-exchange"])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print("listening on 127.0.0.1:%d" % listener.getsockname()[1], flush=True)
    while True:
        sock, _ = listener.accept()
        tls = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        threading.Thread(target=serve, args=(tls, mode), daemon=True).start()


if __name__ == "__main__":
    main()
