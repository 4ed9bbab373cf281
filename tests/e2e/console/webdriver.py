#!/usr/bin/env python3
"""The console's pages in headless Chromium, driven over W3C WebDriver (chromedriver) with plain
HTTP JSON (urllib): the graph shows the workloads and edges with the right mTLS badge and deny
counts, selecting an edge lists its deciding policies, the decisions view shows the denied request
with its policy and rule, the what-if form answers. Screenshots of each view go to ARTIFACTS.
Every wait is bounded. Usage: webdriver.py CONSOLE_URL ARTIFACTS_DIR WORK_DIR"""
import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

URL, ARTIFACTS, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--window-size=1280,900", "--user-data-dir=" + os.path.join(WORK, "chromium-profile")]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Driver:
    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port
        self.session = None

    def call(self, method, path, body=None, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            raise RuntimeError("%s %s: %s" % (method, path, e.read()[:500]))

    def s(self, method, path, body=None):
        return self.call(method, "/session/%s%s" % (self.session, path), body)

    def js(self, script, *args):
        return self.s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def element(self, css):
        value = self.s("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(value.values()))

    def wait(self, what, script, *args, timeout=20):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = self.js(script, *args)
            if last:
                print("ok: " + what)
                return last
            time.sleep(0.25)
        raise RuntimeError("timed out: %s (last: %r)" % (what, last))

    def screenshot(self, name):
        png = base64.b64decode(self.s("GET", "/screenshot"))
        with open(os.path.join(ARTIFACTS, name), "wb") as f:
            f.write(png)


def main():
    port = free_port()
    log = open(os.path.join(WORK, "chromedriver.log"), "w")
    driver_proc = subprocess.Popen(["chromedriver", "--port=%d" % port], stdout=log, stderr=subprocess.STDOUT)
    d = Driver(port)
    try:
        deadline = time.time() + 20
        while True:
            try:
                if d.call("GET", "/status", timeout=2).get("ready"):
                    break
            except Exception:
                pass
            if time.time() > deadline:
                raise RuntimeError("chromedriver did not become ready")
            time.sleep(0.2)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium", "args": CHROME_ARGS}}}}
        d.session = d.call("POST", "/session", caps, timeout=60)["sessionId"]
        try:
            run(d)
        finally:
            d.call("DELETE", "/session/" + d.session)
    finally:
        driver_proc.terminate()
        try:
            driver_proc.wait(10)
        except subprocess.TimeoutExpired:
            driver_proc.kill()


def run(d):
    # Graph: both workloads in namespace default, the mTLS edge with its deny count, the plaintext one.
    d.s("POST", "/url", {"url": URL + "#graph"})
    edge = 'tr[data-edge="default/sleep->default/details"]'
    plain = 'tr[data-edge="plaintext->default/details"]'
    d.wait("graph: sleep → details edge shown with the mTLS badge",
           "var r = document.querySelector(arguments[0]); return !!r && r.children[2].textContent === 'mTLS';", edge)
    denied = d.js("var r = document.querySelector(arguments[0]); return r.children[5].textContent;", edge)
    if denied != "3":
        raise RuntimeError("graph: sleep → details denied count %r, want 3" % denied)
    print("ok: graph: sleep → details shows 3 denied")
    badge = d.js("var r = document.querySelector(arguments[0]); return r && r.children[2].textContent;", plain)
    if badge != "plaintext":
        raise RuntimeError("graph: plaintext edge badge %r" % badge)
    print("ok: graph: the plaintext edge carries the plaintext badge")
    names = d.js("return Array.prototype.map.call(document.querySelectorAll('#graph-svg g.node text'),"
                 " function (t) { return t.textContent; }).sort().join(',');")
    for want in ("details", "sleep", "plaintext (no identity)"):
        if want not in names.split(","):
            raise RuntimeError("graph: node %r not drawn (nodes: %s)" % (want, names))
    labels = d.js("return document.querySelectorAll('#graph-svg text.ns-label').length;")
    if labels < 2:
        raise RuntimeError("graph: namespaces not grouped (labels: %r)" % labels)
    svg_edges = d.js("return Array.prototype.map.call(document.querySelectorAll('#graph-svg path.edge'),"
                     " function (p) { return p.getAttribute('class'); }).sort().join(',');")
    if svg_edges != "edge mTLS,edge plaintext":
        raise RuntimeError("graph: drawn edges %r" % svg_edges)
    print("ok: graph: nodes grouped by namespace, edges drawn with their badge")
    d.s("POST", "/element/%s/click" % d.element(edge), {})
    d.wait("graph: the selected edge lists default/deny-admin as a deciding policy",
           "var t = document.querySelector('#edge-policies'); return !!t && t.textContent.indexOf('default/deny-admin') >= 0;")
    d.screenshot("console-graph.png")

    # Decisions: the denied request with its policy and rule.
    d.s("POST", "/url", {"url": URL + "#decisions"})
    row = d.wait("decisions: the denied request listed",
                 "var rows = document.querySelectorAll('#decisions tbody tr');"
                 "for (var i = 0; i < rows.length; i++) { var c = rows[i].children;"
                 " if (c[4].textContent === '/admin/keys') return Array.prototype.map.call(c, function (x) { return x.textContent; }); }"
                 "return null;")
    # time, source, destination, method, path, status, decision, policy, rule, reason
    got = row[1:9]
    want = ["default/sleep", "default/details", "GET", "/admin/keys", "403", "DENY", "default/deny-admin", "0"]
    if got != want:
        raise RuntimeError("decisions row %r, want %r" % (got, want))
    print("ok: decisions: source, destination, method, path, status, decision, policy and rule")
    d.screenshot("console-decisions.png")

    # What-if: the form answers.
    d.s("POST", "/url", {"url": URL + "#whatif"})
    d.wait("what-if: workloads offered", "return document.querySelectorAll('#whatif-workload option').length >= 2;")
    d.js("document.querySelector('#whatif-workload').value = 'default/details';")
    path = d.element("#whatif-path")
    d.s("POST", "/element/%s/clear" % path, {})
    d.s("POST", "/element/%s/value" % path, {"text": "/admin/secrets"})
    d.s("POST", "/element/%s/value" % d.element("#whatif-principal"), {"text": "cluster.local/ns/default/sa/sleep"})
    d.s("POST", "/element/%s/click" % d.element("#whatif-submit"), {})
    result = d.wait("what-if: the form answers",
                    "var e = document.querySelector('#whatif-decision'); return e ? document.querySelector('#whatif-result').textContent : null;")
    if not result.startswith("DENY") or "default/deny-admin" not in result:
        raise RuntimeError("what-if answered %r" % result)
    print("ok: what-if: DENY by default/deny-admin")
    d.screenshot("console-whatif.png")

    # Suggest: generated from observed traffic, then its dry run.
    d.s("POST", "/url", {"url": URL + "#suggest"})
    d.wait("suggest: workloads offered", "return document.querySelectorAll('#suggest-workload option').length >= 2;")
    d.js("document.querySelector('#suggest-workload').value = 'default/details';")
    d.s("POST", "/element/%s/click" % d.element("#suggest-generate"), {})
    d.wait("suggest: the policy generated",
           "return document.querySelector('#suggest-yaml').value.indexOf('cluster.local/ns/default/sa/sleep') >= 0;")
    d.s("POST", "/element/%s/click" % d.element("#suggest-dryrun"), {})
    summary = d.wait("suggest: the dry run answers",
                     "var e = document.querySelector('#dryrun-summary'); return e ? e.textContent : null;")
    if not summary.startswith("5 of 11 observed requests would be allowed"):
        raise RuntimeError("suggest dry run said %r" % summary)
    print("ok: suggest: the dry run allows the observed mTLS traffic")
    d.screenshot("console-suggest.png")

    for view in ("workloads", "policies", "mesh"):
        d.s("POST", "/url", {"url": URL + "#" + view})
        d.wait(view + " view drawn", "return document.querySelector('#status').textContent.indexOf('updated') === 0;")
        d.screenshot("console-%s.png" % view)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one line, then the test fails
        print("FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)
