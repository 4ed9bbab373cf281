#!/usr/bin/env python3
"""A third party outside the mesh for the egress tests: an HTTPS server on 127.0.0.1 (port chosen
by the kernel, printed as `listening on 127.0.0.1:PORT`) with its own certificate, answering every
GET with a JSON echo of what it saw — method, path, Host, the SNI the client sent, and the request
headers — so a test can tell that TLS was originated by the proxy and which headers left the mesh.
With --plain it speaks plain HTTP ("sni" is then null): the third party of a plain-HTTP egress.

usage: https_server.py CERT KEY | https_server.py --plain
"""
import http.server
import json
import ssl
import sys

SNI = {}  # id(the TLS socket) -> the server name its client sent (dict operations are atomic)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = json.dumps({
            "method": self.command,
            "path": self.path,
            "host": self.headers.get("Host"),
            "sni": SNI.get(id(self.connection)),
            "headers": {k.lower(): v for k, v in self.headers.items()},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("request %s\n" % (fmt % args))
        sys.stderr.flush()


def main():
    if sys.argv[1] == "--plain":
        plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        plain.daemon_threads = True
        print("listening on 127.0.0.1:%d" % plain.server_address[1], flush=True)
        plain.serve_forever()
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[1], sys.argv[2])

    def remember_sni(conn, name, _ctx):
        SNI[id(conn)] = name

    context.sni_callback = remember_sni

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def get_request(self):
            sock, addr = self.socket.accept()
            tls = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            tls.settimeout(10)
            return tls, addr

        def finish_request(self, request, client_address):
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError) as e:
                sys.stderr.write("handshake failed: %s\n" % e)
                sys.stderr.flush()
                return
            try:
                super().finish_request(request, client_address)
            finally:
                SNI.pop(id(request), None)

    server = Server(("127.0.0.1", 0), Handler)
    print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
