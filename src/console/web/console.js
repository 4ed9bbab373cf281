// meshguard console: six views over the control plane's JSON API (/api/..., docs/CONSOLE.md),
// drawn with d3 v3 (Debian's libjs-d3). Everything shown comes from the API; views refresh every
// few seconds while open.
(function () {
  "use strict";
  var REFRESH_MS = 3000;
  var current = null, timer = null, selectedEdge = null;

  function api(path, body) {
    return new Promise(function (resolve, reject) {
      var req = body === undefined ? d3.json("/api/" + path) : d3.xhr("/api/" + path).header("Content-Type", "application/json");
      var done = function (err, data) {
        if (err) {
          var text = err.responseText || String(err);
          try { text = JSON.parse(text).error || text; } catch (e) { /* not JSON */ }
          reject(new Error(text));
        } else {
          resolve(body === undefined ? data : JSON.parse(data.responseText));
        }
      };
      if (body === undefined) req.get(done); else req.post(JSON.stringify(body), done);
    });
  }

  function status(text) { d3.select("#status").text(text); }

  // Fills `tbody` with one row per item, `cells(item)` giving the cells: text, or {html} / {text, cls}.
  function rows(selector, items, cells, key) {
    var tr = d3.select(selector + " tbody").selectAll("tr").data(items, key);
    tr.enter().append("tr");
    tr.exit().remove();
    tr.order();
    tr.each(function (d) {
      var td = d3.select(this).selectAll("td").data(cells(d));
      td.enter().append("td");
      td.exit().remove();
      td.each(function (c) {
        var cell = d3.select(this);
        if (c && typeof c === "object") {
          if (c.html !== undefined) cell.html(c.html); else cell.text(c.text);
          cell.attr("class", c.cls || null);
        } else {
          cell.text(c === null || c === undefined ? "-" : c).attr("class", null);
        }
      });
    });
    return tr;
  }

  function esc(s) { return String(s).replace(/[&<>"]/g, function (c) { return {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;"}[c]; }); }
  function badge(m) { return {html: "<span class=\"badge " + esc(m) + "\">" + esc(m) + "</span>"}; }
  function edgeKey(e) { return e.source + "->" + e.destination; }

  // ---------------------------------------------------------------- graph
  function drawGraph(g) {
    d3.select("#window").text(g.windowSeconds);
    var svg = d3.select("#graph-svg");
    svg.selectAll("*").remove();
    // Namespaces as columns, their workloads stacked; identities without a workload (and
    // plaintext callers) in a column of their own on the left.
    var columns = [], pos = {};
    var outside = g.nodes.filter(function (n) { return n.kind !== "workload"; });
    if (outside.length) columns.push({name: "outside the mesh's workloads", nodes: outside});
    g.namespaces.forEach(function (ns) {
      columns.push({name: "namespace " + ns.name, nodes: g.nodes.filter(function (n) { return n.kind === "workload" && n.namespace === ns.name; })});
    });
    var colWidth = Math.max(220, 900 / Math.max(columns.length, 1));
    var height = 60 + 70 * d3.max(columns, function (c) { return c.nodes.length; }) || 120;
    svg.attr("width", Math.max(960, colWidth * columns.length + 40)).attr("height", Math.max(200, height + 20));
    columns.forEach(function (c, i) {
      var x = 20 + i * colWidth;
      svg.append("rect").attr("class", "ns").attr("x", x).attr("y", 10).attr("rx", 8)
        .attr("width", colWidth - 40).attr("height", height);
      svg.append("text").attr("class", "ns-label").attr("x", x + 10).attr("y", 28).text(c.name);
      c.nodes.forEach(function (n, j) { pos[n.id] = {x: x + (colWidth - 40) / 2, y: 70 + j * 70, node: n}; });
    });
    svg.append("defs").append("marker").attr("id", "arrow").attr("viewBox", "0 0 10 10").attr("refX", 22)
      .attr("refY", 5).attr("markerWidth", 7).attr("markerHeight", 7).attr("orient", "auto")
      .append("path").attr("d", "M0,0 L10,5 L0,10 z").attr("fill", "#5a6478");
    var edges = g.edges.filter(function (e) { return pos[e.source] && pos[e.destination]; });
    var paths = svg.selectAll("path.edge").data(edges).enter().append("path")
      .attr("class", function (e) { return "edge " + e.mtls; })
      .attr("marker-end", "url(#arrow)")
      .attr("d", function (e) {
        var a = pos[e.source], b = pos[e.destination];
        var mx = (a.x + b.x) / 2, my = (a.y + b.y) / 2 - (a.x === b.x ? 0 : 30);
        if (a === b) return "M" + a.x + "," + a.y + " c 60,-60 60,60 0,0";
        return "M" + a.x + "," + a.y + " Q" + mx + "," + my + " " + b.x + "," + b.y;
      })
      .on("click", function (e) { selectEdge(e); });
    paths.append("title").text(function (e) { return edgeKey(e); });
    // A label beside a vertical edge (same column), above a curved one.
    svg.selectAll("text.edge-label").data(edges).enter().append("text").attr("class", "edge-label")
      .attr("x", function (e) { var a = pos[e.source], b = pos[e.destination]; return (a.x + b.x) / 2 + (a.x === b.x ? 10 : 0); })
      .attr("y", function (e) { var a = pos[e.source], b = pos[e.destination]; return (a.y + b.y) / 2 + (a.x === b.x ? 4 : -18); })
      .attr("text-anchor", function (e) { return pos[e.source].x === pos[e.destination].x ? "start" : "middle"; })
      .text(function (e) { return e.mtls + "  " + e.rate + "/s  ✓" + e.allowed + " ✗" + e.denied; });
    var nodes = svg.selectAll("g.node").data(d3.values(pos)).enter().append("g")
      .attr("class", function (p) { return "node " + p.node.kind + (p.node.kind === "workload" && !p.node.connected ? " disconnected" : ""); })
      .attr("transform", function (p) { return "translate(" + p.x + "," + p.y + ")"; });
    nodes.append("circle").attr("r", 12);
    nodes.append("text").attr("x", 16).attr("y", 4).text(function (p) { return p.node.name; });
    rows("#edges", g.edges, function (e) {
      return [e.source, e.destination, badge(e.mtls), e.rate, {text: e.allowed, cls: "allowed"}, {text: e.denied, cls: "denied"}];
    }, edgeKey).attr("data-edge", edgeKey).on("click", selectEdge)
      .classed("selected", function (e) { return selectedEdge === edgeKey(e); });
    var again = g.edges.filter(function (e) { return edgeKey(e) === selectedEdge; })[0];
    if (again) selectEdge(again);
  }

  function selectEdge(e) {
    selectedEdge = edgeKey(e);
    d3.selectAll("#edges tbody tr").classed("selected", function (d) { return edgeKey(d) === selectedEdge; });
    var html = "<h3>" + esc(e.source) + " → " + esc(e.destination) + "</h3><p>principals: " +
      esc(e.sourcePrincipals.join(", ") || "none (plaintext)") + "</p><table id=\"edge-policies\"><tr><th>deciding policy</th>" +
      "<th>allowed</th><th>denied</th></tr>";
    e.policies.forEach(function (p) {
      html += "<tr><td>" + esc(p.policy || "(no policy decided)") + "</td><td>" + p.allowed + "</td><td>" + p.denied + "</td></tr>";
    });
    d3.select("#edge-detail").html(html + "</table>");
  }

  // ---------------------------------------------------------------- workloads, policies, mesh
  function ago(seconds) {
    var s = Math.abs(seconds), u = s >= 86400 ? [86400, "d"] : s >= 3600 ? [3600, "h"] : s >= 60 ? [60, "m"] : [1, "s"];
    return (seconds < 0 ? "-" : "") + Math.floor(s / u[0]) + u[1];
  }
  function drawWorkloads(w) {
    rows("#workloads", w.workloads, function (x) {
      var c = x.certificate;
      return [x.id, x.spiffeId || null, c ? c.serial : null,
        c ? {text: ago(c.secondsLeft) + " left", cls: c.warning ? "warn" : null} : null,
        x.trustRoot ? x.trustRoot.bundle + (x.trustRoot.current ? " (current)" : " (previous)") : null,
        x.connected ? "yes" : "no",
        x.configSent.version ? x.configSent.version.slice(0, 12) + " @" + x.configSent.revision : null,
        x.configAcked.version ? x.configAcked.version.slice(0, 12) + " @" + x.configAcked.revision : (x.nackError || null)];
    }, function (x) { return x.id; }).attr("data-workload", function (x) { return x.id; });
  }
  function drawPolicies(p) {
    rows("#policies", p.resources, function (r) {
      var mode = [];
      if (r.action) mode.push(r.action);
      if (r.dryRun) mode.push("dry-run");
      return [r.kind, r.namespace + "/" + r.name, mode.join(" ") || null,
        r.selects === null ? null : (r.selects.join(", ") || "(none)"),
        {html: r.findings.map(function (f) { return "<span class=\"warn\">" + esc(f.code) + "</span> " + esc(f.severity) + ": " + esc(f.message); }).join("<br>")}];
    }, function (r) { return r.kind + "/" + r.namespace + "/" + r.name; });
  }
  function drawMesh(m) {
    var items = [["trust domain", m.trustDomain], ["mesh-wide mTLS", m.mtlsMode + (m.mtlsDecidedBy ? " (" + m.mtlsDecidedBy + ")" : " (default)")],
      ["CA roots", m.caRoots.map(function (r) { return r.subject + " — expires in " + ago(r.secondsLeft); }).join("; ")],
      ["rotation", m.rotation.onCurrentBundle + " of " + m.rotation.connected + " connected proxies on bundle " + m.bundle],
      ["certificate TTL", m.certificateTtlSeconds + " s"], ["store revision", m.storeRevision],
      ["telemetry", m.telemetry.proxiesReporting + " proxies reporting; dropped flows " + m.telemetry.flowsDropped]];
    var dl = d3.select("#mesh").html("");
    items.forEach(function (i) { dl.append("dt").text(i[0]); dl.append("dd").text(i[1]); });
  }

  // ---------------------------------------------------------------- decisions
  var workloadIds = [];
  function fillWorkloadSelects() {
    return api("workloads").then(function (w) {
      workloadIds = w.workloads.map(function (x) { return x.id; });
      ["#filter-workload", "#whatif-workload", "#suggest-workload"].forEach(function (sel) {
        var s = d3.select(sel);
        var opts = s.selectAll("option.w").data(workloadIds, function (d) { return d; });
        opts.enter().append("option").attr("class", "w").attr("value", function (d) { return d; }).text(function (d) { return d; });
        opts.exit().remove();
      });
    });
  }
  function drawDecisions(d) {
    rows("#decisions", d.decisions, function (x) {
      return [new Date(x.timeUnixMs).toISOString().replace("T", " ").slice(0, 19), x.source, x.destination, x.method, x.path,
        x.status, {text: x.audit ? "AUDIT " + x.decision : x.decision, cls: x.decision === "DENY" ? "deny" : "allow"},
        x.policy, x.rule, x.reason];
    });
  }
  function decisionsQuery() {
    var q = [], w = d3.select("#filter-workload").property("value"), p = d3.select("#filter-policy").property("value");
    if (w) q.push("workload=" + encodeURIComponent(w));
    if (p) q.push("policy=" + encodeURIComponent(p));
    return "decisions" + (q.length ? "?" + q.join("&") : "");
  }

  // ---------------------------------------------------------------- what-if
  function whatif() {
    var principal = d3.select("#whatif-principal").property("value").trim();
    var request = {destination: {port: +d3.select("#whatif-port").property("value")},
      request: {method: d3.select("#whatif-method").property("value"), path: d3.select("#whatif-path").property("value")}};
    if (principal) request.source = {principal: principal};
    var out = d3.select("#whatif-result").text("deciding…");
    api("whatif", {workload: d3.select("#whatif-workload").property("value"), request: request}).then(function (r) {
      out.html("<span id=\"whatif-decision\" class=\"" + (r.decision === "ALLOW" ? "allow" : "deny") + "\">" + esc(r.decision) +
        "</span> status " + r.status + " — <span id=\"whatif-reason\">" + esc(r.reason) + "</span>" +
        (r.policy ? " (policy " + esc(r.policy) + (r.rule !== null ? ", rule " + r.rule : "") + ")" : ""));
    }, function (err) { out.html("<span id=\"whatif-error\" class=\"warn\">" + esc(err.message) + "</span>"); });
  }

  // ---------------------------------------------------------------- suggest
  function suggest() {
    var w = d3.select("#suggest-workload").property("value");
    d3.select("#suggest-result").html("");
    api("suggest?workload=" + encodeURIComponent(w)).then(function (s) {
      d3.select("#suggest-yaml").property("value", s.yaml);
      d3.select("#suggest-observed").text(s.rules + " rule(s) from " + s.observed.requests + " observed requests (" +
        s.observed.plaintextRequests + " plaintext and " + s.observed.deniedRequests + " denied ones make no rule)");
    }, function (err) { d3.select("#suggest-observed").html("<span class=\"warn\">" + esc(err.message) + "</span>"); });
  }
  function dryRun() {
    var out = d3.select("#suggest-result").text("replaying…");
    api("suggest/dryrun", {workload: d3.select("#suggest-workload").property("value"),
      yaml: d3.select("#suggest-yaml").property("value")}).then(function (r) {
      var html = "<p id=\"dryrun-summary\">" + r.wouldAllow + " of " + r.requests + " observed requests would be allowed, " +
        r.wouldDeny + " denied; " + r.changed.length + " flow(s) would change.</p>";
      if (r.changed.length) {
        html += "<table id=\"dryrun-changed\"><tr><th>principal</th><th>method</th><th>path</th><th>requests</th>" +
          "<th>observed</th><th>would be</th><th>reason</th></tr>";
        r.changed.forEach(function (c) {
          html += "<tr><td>" + esc(c.sourcePrincipal || "plaintext") + "</td><td>" + esc(c.method || "-") + "</td><td>" +
            esc(c.pathPrefix || "-") + "</td><td>" + c.requests + "</td><td>" + c.observed + "</td><td>" + c.wouldBe +
            "</td><td>" + esc(c.reason) + "</td></tr>";
        });
        html += "</table>";
      }
      out.html(html);
    }, function (err) { out.html("<span id=\"dryrun-error\" class=\"warn\">" + esc(err.message) + "</span>"); });
  }

  // ---------------------------------------------------------------- views
  var views = {
    graph: function () { return api("graph").then(drawGraph); },
    workloads: function () { return api("workloads").then(drawWorkloads); },
    policies: function () { return api("policies").then(drawPolicies); },
    decisions: function () { return fillWorkloadSelects().then(function () { return api(decisionsQuery()); }).then(drawDecisions); },
    whatif: function () { return fillWorkloadSelects(); },
    suggest: function () { return fillWorkloadSelects(); },
    mesh: function () { return api("mesh").then(drawMesh); }
  };
  function refresh() {
    var view = current;
    views[view]().then(function () { status("updated " + new Date().toLocaleTimeString()); },
      function (err) { status("error: " + err.message); });
  }
  function show(view) {
    if (!views[view]) view = "graph";
    current = view;
    d3.selectAll(".view").classed("active", false);
    d3.select("#view-" + view).classed("active", true);
    d3.selectAll("#tabs a").classed("active", function () { return this.getAttribute("data-view") === view; });
    clearInterval(timer);
    refresh();
    if (view !== "whatif" && view !== "suggest") timer = setInterval(refresh, REFRESH_MS);
  }
  window.addEventListener("hashchange", function () { show(location.hash.slice(1)); });
  d3.select("#whatif-form").on("submit", function () { d3.event.preventDefault(); whatif(); });
  d3.select("#suggest-form").on("submit", function () { d3.event.preventDefault(); suggest(); });
  d3.select("#suggest-dryrun").on("click", dryRun);
  d3.select("#decision-filter").on("change", refresh).on("submit", function () { d3.event.preventDefault(); refresh(); });
  show(location.hash.slice(1) || "graph");
})();
