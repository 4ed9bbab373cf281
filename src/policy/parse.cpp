// policy/parse.cpp — policy::parse_resources: splits a YAML stream into documents, places each in
// its namespace, refuses what cannot be enforced safely, and dispatches by kind to the parse_*.cpp
// files (authz, authn, mesh, opa, service); the node walkers they all share are parse_walkers.cpp.
#include "policy/parse.h"
#include "policy/mesh.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <utility>

#include "policy/match.h"
#include "policy/parse_internal.h"

namespace mg::policy {

using namespace detail;  // the walkers and kind parsers of parse_internal.h

const char* to_string(Action a) {
  switch (a) {
    case Action::Allow:
      return "ALLOW";
    case Action::Deny:
      return "DENY";
    case Action::Audit:
      return "AUDIT";
    case Action::Custom:
      return "CUSTOM";
  }
  return "?";
}

const char* to_string(MtlsMode m) {
  switch (m) {
    case MtlsMode::Unset:
      return "UNSET";
    case MtlsMode::Disable:
      return "DISABLE";
    case MtlsMode::Permissive:
      return "PERMISSIVE";
    case MtlsMode::Strict:
      return "STRICT";
  }
  return "?";
}

const char* to_string(ServiceProtocol p) {
  switch (p) {
    case ServiceProtocol::Http:
      return "http";
    case ServiceProtocol::Http2:
      return "http2";
    case ServiceProtocol::Grpc:
      return "grpc";
    case ServiceProtocol::Tcp:
      return "tcp";
  }
  return "?";
}

namespace {

// Lists stay in load order, so of several resources with one name the last is the later document:
// it is kept, the earlier ones are dropped and recorded.
void keep_the_later_of_each_name(ResourceSet& set) {
  for_each_kind(set, [&](const char* kind, auto& resources) {
    std::map<std::pair<std::string_view, std::string_view>, size_t> last;
    for (size_t i = 0; i < resources.size(); ++i) last[{resources[i].meta.ns, resources[i].meta.name}] = i;
    if (last.size() == resources.size()) return;
    std::vector<size_t> winner(resources.size());
    for (size_t i = 0; i < resources.size(); ++i)
      winner[i] = last.at({resources[i].meta.ns, resources[i].meta.name});
    std::remove_reference_t<decltype(resources)> kept;
    for (size_t i = 0; i < resources.size(); ++i) {
      const Meta& by = resources[winner[i]].meta;
      if (winner[i] != i) {
        const Meta& old = resources[i].meta;
        set.replaced.push_back({kind, old.full_name(), old.source, by.source, old.line, by.line});
      }
    }
    for (size_t i = 0; i < resources.size(); ++i)
      if (winner[i] == i) kept.push_back(std::move(resources[i]));
    resources = std::move(kept);
  });
}

}  // namespace

void ResourceSet::append(ResourceSet&& other) {
  int next_order = 0;
  for_each_kind(*this, [&](const char*, const auto& resources) {
    for (const auto& r : resources) next_order = std::max(next_order, r.meta.order + 1);
  });
  for_each_kind(other, [&](const char*, auto& resources) {
    for (auto& r : resources) r.meta.order += next_order;
  });
  auto move_all = [](auto& into, auto& from) {
    for (auto& r : from) into.push_back(std::move(r));
  };
  for_each_kind([&](const char*, auto member) { move_all(this->*member, other.*member); });
  move_all(skipped, other.skipped);
  move_all(replaced, other.replaced);
  keep_the_later_of_each_name(*this);
}

bool is_dns_label(std::string_view name) {
  if (name.empty() || name.size() > 63 || name.front() == '-' || name.back() == '-') return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

std::string skipped_warning(const ResourceSet& set) {
  if (set.skipped.empty()) return {};
  std::string out = "skipped " + std::to_string(set.skipped.size()) + " document" +
                    (set.skipped.size() == 1 ? "" : "s") + " of kinds meshguard does not enforce:";
  for (size_t i = 0; i < set.skipped.size(); ++i) {
    const auto& d = set.skipped[i];
    out += (i == 0 ? " " : ", ") + d.kind + " " + (d.ns.empty() ? "" : d.ns + "/") +
           (d.name.empty() ? "(no name)" : d.name) + " (" + d.source + ":" + std::to_string(d.line) + ")";
  }
  return out;
}

bool ConditionKey::http_only() const {
  switch (kind) {
    case Kind::RequestHeader:
    case Kind::AuthPrincipal:
    case Kind::AuthAudiences:
    case Kind::AuthPresenter:
    case Kind::AuthClaim:
      return true;
    default:
      return false;
  }
}

Result<ConditionKey> parse_condition_key(std::string_view key) {
  using K = ConditionKey::Kind;
  static const std::pair<std::string_view, K> kPlain[] = {
      {"source.ip", K::SourceIp},
      {"remote.ip", K::RemoteIp},
      {"source.namespace", K::SourceNamespace},
      {"source.principal", K::SourcePrincipal},
      {"request.auth.principal", K::AuthPrincipal},
      {"request.auth.audiences", K::AuthAudiences},
      {"request.auth.presenter", K::AuthPresenter},
      {"destination.ip", K::DestinationIp},
      {"destination.port", K::DestinationPort},
      {"connection.sni", K::ConnectionSni},
  };
  ConditionKey out;
  for (const auto& [name, kind] : kPlain) {
    if (key == name) {
      out.kind = kind;
      return out;
    }
  }
  // Bracketed keys: prefix followed by one ([header]) or more ([claim][nested]) segments.
  std::string_view rest;
  if (key.starts_with("request.headers[")) {
    out.kind = K::RequestHeader;
    rest = key.substr(std::string_view("request.headers").size());
  } else if (key.starts_with("request.auth.claims[")) {
    out.kind = K::AuthClaim;
    rest = key.substr(std::string_view("request.auth.claims").size());
  } else if (key.starts_with("experimental.envoy.filters.")) {
    return fail("policy.unsupported_key",
                "when key \"" + std::string(key) +
                    "\" (experimental Envoy filter metadata) is not supported by meshguard");
  } else {
    return fail("policy.unknown_key", "unknown when key \"" + std::string(key) + "\"");
  }
  while (!rest.empty()) {
    if (rest.front() != '[') break;
    const auto close = rest.find(']');
    if (close == std::string_view::npos) break;
    const auto segment = rest.substr(1, close - 1);
    if (segment.empty() || segment.find('[') != std::string_view::npos) break;
    out.args.emplace_back(segment);
    rest = rest.substr(close + 1);
  }
  if (!rest.empty() || out.args.empty() || (out.kind == K::RequestHeader && out.args.size() != 1)) {
    return fail("policy.bad_key", "malformed when key \"" + std::string(key) + "\"");
  }
  return out;
}

const char* to_string(ExtensionProvider::Kind k) {
  return k == ExtensionProvider::Kind::EnvoyExtAuthzHttp ? "envoyExtAuthzHttp" : "envoyExtAuthzGrpc";
}

namespace {

struct DocumentText {
  std::string_view body;  // what yaml-cpp loads: the "---" marker itself left out
  std::string_view text;  // the document as written, its "---" marker line included
  int first_line = 0;     // 0-based line of `body`'s first character
};

bool is_marker(std::string_view line, std::string_view marker) {
  if (!line.starts_with(marker)) return false;
  return line.size() == marker.size() || line[marker.size()] == ' ' || line[marker.size()] == '\t' ||
         line[marker.size()] == '\r';
}

// Splits a YAML stream at its document markers ("---" starts, "..." ends a document; both only
// at column 0, where YAML forbids them inside scalars). yaml-cpp 0.7's LoadAll can loop forever
// on some malformed streams (jbeder/yaml-cpp#1319), so each document is loaded on its own.
std::vector<DocumentText> split_documents(std::string_view text) {
  std::vector<DocumentText> docs;
  size_t start = 0, text_start = 0;
  int start_line = 0, line = 0;
  size_t pos = 0;
  auto flush = [&](size_t end) {
    if (end > start) {
      docs.push_back(
          {text.substr(start, end - start), text.substr(text_start, end - text_start), start_line});
    }
  };
  while (pos <= text.size()) {
    const size_t eol = std::min(text.find('\n', pos), text.size());
    const auto current = text.substr(pos, eol - pos);
    if (is_marker(current, "---")) {
      flush(pos);
      // Content after "--- " on the marker line belongs to the new document.
      start = pos + 3;
      text_start = pos;
      start_line = line;
    } else if (is_marker(current, "...")) {
      flush(pos);
      start = std::min(eol + 1, text.size());
      text_start = start;
      start_line = line + 1;
    }
    if (eol == text.size()) break;
    pos = eol + 1;
    ++line;
  }
  flush(text.size());
  return docs;
}

}  // namespace

namespace {

Status parse_meta(Ctx& ctx, const YAML::Node& n, Meta& meta) {
  if (!n.IsDefined() || n.IsNull()) return err(ctx, n, "metadata is required");
  meta.ns.clear();
  auto s = for_each_field(
      ctx, n, "metadata",
      {"name", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation",
       "creationTimestamp", "managedFields", "finalizers", "ownerReferences"},
      [&](const std::string& key, const YAML::Node& v) -> Status {
        if (key == "name" || key == "namespace") {
          auto text = scalar(ctx, v, "metadata." + key);
          if (!text) return fail(text.error());
          if (text->empty() || text->find('/') != std::string::npos) {
            return err(ctx, v, "metadata." + key + " must be a non-empty name without '/'");
          }
          (key == "name" ? meta.name : meta.ns) = *text;
        } else if (key == "labels" || key == "annotations") {
          std::map<std::string, std::string> values;
          if (auto st = string_map(ctx, v, "metadata." + key, values); !st) return st;
          if (key == "labels") {
            if (auto it = values.find(std::string(kMeshLabel)); it != values.end()) {
              if (!is_dns_label(it->second)) {
                return err(
                    ctx, v,
                    "label meshguard.io/mesh must be a mesh name (a DNS label), not \"" + it->second + "\"",
                    "policy.bad_mesh_name");
              }
              meta.mesh = it->second == kDefaultMesh ? std::string() : it->second;
            }
          }
          if (key == "annotations") {
            if (auto it = values.find("istio.io/dry-run"); it != values.end()) {
              if (it->second != "true" && it->second != "false") {
                return err(ctx, v, "annotation istio.io/dry-run must be \"true\" or \"false\"");
              }
              meta.dry_run = it->second == "true";
            }
          }
        }
        return {};  // other Kubernetes bookkeeping fields are accepted and ignored
      });
  if (!s) return s;
  if (meta.name.empty()) return err(ctx, n, "metadata.name is required");
  return {};  // meta.ns stays empty when metadata.namespace is absent (see place_in_namespace)
}

// Workload.spec.egress entries: "NAMESPACE/NAME" (see resources.h).
Status parse_egress(Ctx& ctx, const YAML::Node& v, Workload& w) {
  if (!v.IsSequence()) return err(ctx, v, "egress must be a list of \"NAMESPACE/NAME\" strings");
  std::vector<std::string> entries;
  if (auto st = string_list(ctx, v, "egress", entries); !st) return st;
  for (const auto& e : entries) {
    const auto slash = e.find('/');
    const std::string ns = slash == std::string::npos ? "" : e.substr(0, slash);
    const std::string name = slash == std::string::npos ? "" : e.substr(slash + 1);
    if ((ns != "." && ns != "*" && !is_dns_label(ns)) || (name != "*" && !is_dns_label(name))) {
      return err(ctx, v,
                 "egress entry \"" + e +
                     "\" must be NAMESPACE/NAME: a namespace, \".\" or \"*\", then a service name or \"*\"",
                 "policy.bad_value");
    }
  }
  w.egress = std::move(entries);
  return {};
}

Status parse_workload(Ctx& ctx, const YAML::Node& spec, Workload& w) {
  return for_each_field(ctx, spec, "Workload.spec",
                        {"serviceAccount", "labels", "address", "ports", "egress"},
                        [&](const std::string& key, const YAML::Node& v) -> Status {
                          if (key == "egress") return parse_egress(ctx, v, w);
                          if (key == "serviceAccount") {
                            auto text = scalar(ctx, v, "serviceAccount");
                            if (!text) return fail(text.error());
                            w.service_account = *text;
                            return {};
                          }
                          if (key == "labels") return string_map(ctx, v, "labels", w.labels);
                          if (key == "address") {
                            auto text = scalar(ctx, v, "address");
                            if (!text) return fail(text.error());
                            if (!parse_ip(*text)) return err(ctx, v, "address must be an IP address");
                            w.address = *text;
                            return {};
                          }
                          std::vector<std::string> ports;
                          if (auto st = port_list(ctx, v, "ports", ports); !st) return st;
                          for (const auto& p : ports) w.ports.push_back(*parse_port(p));
                          return {};
                        });
}

bool is_enforced_kind(std::string_view kind) {
  return kind == "AuthorizationPolicy" || kind == "PeerAuthentication" || kind == "RequestAuthentication" ||
         kind == "Workload" || kind == "Mesh" || kind == "OPAPolicy" || kind == "ServiceEndpoints" ||
         kind == "DestinationRule";
}

// The API groups meshguard owns every kind of: an unknown kind there is a typo or an API this build
// does not know, and skipping it could silently drop a security rule, so it is refused instead.
bool is_security_group(std::string_view api_version) {
  const auto slash = api_version.find('/');
  const auto group = slash == std::string_view::npos ? std::string_view() : api_version.substr(0, slash);
  return group == "security.istio.io" || group == "meshguard.io";
}

std::string scalar_or_empty(const YAML::Node& n) {
  return n.IsDefined() && n.IsScalar() ? n.Scalar() : std::string();
}

// A document of another kind (networking.istio.io, Kubernetes core, apps, ...) in the same file:
// recorded, so the caller can name it in a warning, and otherwise left alone. Only its apiVersion
// and kind must be there: without them it is not a Kubernetes object at all.
bool skip_document(Ctx& ctx, const YAML::Node& doc, ResourceSet& out) {
  const YAML::Node kind = std::as_const(doc)["kind"], api_version = std::as_const(doc)["apiVersion"];
  if (!kind.IsDefined() || !kind.IsScalar() || !api_version.IsDefined() || !api_version.IsScalar())
    return false;
  if (kind.Scalar().empty() || api_version.Scalar().empty()) return false;
  if (is_enforced_kind(kind.Scalar()) || is_security_group(api_version.Scalar()) ||
      is_networking_kind(kind.Scalar(), api_version.Scalar()))
    return false;
  SkippedDocument skipped;
  skipped.kind = kind.Scalar();
  if (const YAML::Node metadata = std::as_const(doc)["metadata"]; metadata.IsDefined() && metadata.IsMap()) {
    skipped.name = scalar_or_empty(std::as_const(metadata)["name"]);
    skipped.ns = scalar_or_empty(std::as_const(metadata)["namespace"]);
  }
  skipped.source = ctx.source;
  skipped.line = line_of(doc);
  out.skipped.push_back(std::move(skipped));
  return true;
}

Unexpected<Error> cannot_place(const Ctx& ctx, const YAML::Node& metadata, std::string_view ns) {
  return err(ctx, metadata,
             "cannot add namespace " + std::string(ns) +
                 " to this document's metadata; write metadata.namespace in the document",
             "policy.bad_namespace");
}

// The current document's text with `namespace: <ns>` added as the first field of its metadata
// (a block mapping or a flow one, as in JSON), so that the text alone, stored and pushed to
// proxies, says where the resource lives. Anything else (an anchored or tagged mapping) is refused
// rather than guessed at.
Result<std::string> with_first_field(const Ctx& ctx, const YAML::Node& metadata, const std::string& field) {
  const std::string_view doc = ctx.document;
  const auto mark = metadata.Mark();
  const size_t pos = ctx.body_offset + static_cast<size_t>(std::max(0, mark.pos));
  if (mark.pos >= 0 && pos < doc.size()) {
    if (metadata.Style() == YAML::EmitterStyle::Flow && doc[pos] == '{') {
      const auto next = doc.find_first_not_of(" \t\r\n", pos + 1);
      const bool empty = next != std::string_view::npos && doc[next] == '}';
      return std::string(doc.substr(0, pos + 1)) + field + (empty ? "" : ", ") +
             std::string(doc.substr(pos + 1));
    }
    const size_t column = static_cast<size_t>(std::max(0, mark.column));
    if (metadata.Style() == YAML::EmitterStyle::Block && column > 0 && column <= pos &&
        doc.substr(pos - column, column).find_first_not_of(' ') == std::string_view::npos) {
      const size_t line_start = pos - column;
      return std::string(doc.substr(0, line_start)) + std::string(column, ' ') + field + "\n" +
             std::string(doc.substr(line_start));
    }
  }
  return fail("policy.cannot_place", "cannot add a field");
}

Result<std::string> with_namespace_field(const Ctx& ctx, const YAML::Node& metadata, std::string_view ns) {
  auto text = with_first_field(ctx, metadata, "namespace: " + std::string(ns));
  if (!text) return cannot_place(ctx, metadata, ns);
  return text;
}

// kubectl's rule for a namespaced resource: a document without metadata.namespace goes to the
// -n/--namespace namespace (else "default"); one naming another namespace than -n is refused.
Status place_in_namespace(Ctx& ctx, const YAML::Node& metadata, Meta& meta) {
  if (!meta.ns.empty()) {
    if (ctx.requested_ns.empty() || meta.ns == ctx.requested_ns) return {};
    return err(ctx, std::as_const(metadata)["namespace"],
               "the namespace from the provided object (\"" + meta.ns +
                   "\") does not match the namespace given with -n/--namespace (\"" +
                   std::string(ctx.requested_ns) + "\")",
               "policy.namespace_mismatch");
  }
  meta.ns = ctx.requested_ns.empty() ? "default" : std::string(ctx.requested_ns);
  if (meta.ns == "default") return {};  // the text alone already reads as "default"
  auto text = with_namespace_field(ctx, metadata, meta.ns);
  if (!text) return fail(text.error());
  // The stored text must re-parse to this very resource (proxies parse it alone).
  auto again = parse_resources(*text, ctx.source);
  if (!again || again->size() != 1 || again->replaced.size() + again->skipped.size() != 0) {
    return cannot_place(ctx, metadata, meta.ns);
  }
  bool same = false;
  for_each_kind(*again, [&](const char*, const auto& resources) {
    for (const auto& r : resources) same = r.meta.ns == meta.ns && r.meta.name == meta.name;
  });
  if (!same) {
    return cannot_place(ctx, metadata, meta.ns);
  }
  meta.document = std::move(*text);
  return {};
}

// --mesh for a namespaced resource, as -n for its namespace: a document without the
// meshguard.io/mesh label gets it written into its text (a first field of metadata.labels, or a
// labels field of its own), so the stored text alone says which mesh it belongs to; one naming
// another mesh is refused.
Status place_in_mesh(Ctx& ctx, const YAML::Node& metadata, Meta& meta) {
  if (ctx.requested_mesh.empty()) return {};
  const std::string want =
      ctx.requested_mesh == kDefaultMesh ? std::string() : std::string(ctx.requested_mesh);
  const YAML::Node labels =
      metadata.IsDefined() && metadata.IsMap() ? std::as_const(metadata)["labels"] : YAML::Node();
  const bool labelled =
      labels.IsDefined() && labels.IsMap() && std::as_const(labels)[std::string(kMeshLabel)].IsDefined();
  if (labelled || want.empty()) {
    if (meta.mesh == want) return {};
    return err(ctx, labelled ? labels : metadata,
               "the mesh from the provided object (\"" + std::string(mesh_of(meta)) +
                   "\") does not match the mesh given with --mesh (\"" + std::string(ctx.requested_mesh) +
                   "\")",
               "policy.mesh_mismatch");
  }
  const bool has_labels = labels.IsDefined() && labels.IsMap();
  const std::string field = has_labels ? std::string(kMeshLabel) + ": " + want
                                       : "labels: {" + std::string(kMeshLabel) + ": " + want + "}";
  auto text = with_first_field(ctx, has_labels ? labels : metadata, field);
  if (!text)
    return err(ctx, metadata,
               "cannot add label meshguard.io/mesh to this document; write it in metadata.labels",
               "policy.bad_mesh_name");
  // Parsed again with -n, so a namespace place_in_namespace wrote is written into this text too.
  auto again = parse_resources(*text, ctx.source, ctx.requested_ns);
  bool same = again && again->size() == 1;
  std::string document;
  if (same) {
    for_each_kind(*again, [&](const char*, const auto& resources) {
      for (const auto& r : resources) {
        same = r.meta.mesh == want && r.meta.name == meta.name && r.meta.ns == meta.ns;
        document = r.meta.document;
      }
    });
  }
  if (!same)
    return err(ctx, metadata,
               "cannot add label meshguard.io/mesh to this document; write it in metadata.labels",
               "policy.bad_mesh_name");
  meta.mesh = want;
  meta.document = std::move(document);
  return {};
}

Status parse_document(Ctx& ctx, const YAML::Node& doc, ResourceSet& out) {
  if (!doc.IsMap())
    return err(ctx, doc, "a resource must be a mapping with apiVersion, kind, metadata and spec");
  if (skip_document(ctx, doc, out)) return {};
  std::string api_version, kind;
  YAML::Node metadata, spec;
  bool has_spec = false;
  auto s = for_each_field(ctx, doc, "resource", {"apiVersion", "kind", "metadata", "spec", "status"},
                          [&](const std::string& key, const YAML::Node& v) -> Status {
                            if (key == "apiVersion" || key == "kind") {
                              auto text = scalar(ctx, v, key);
                              if (!text) return fail(text.error());
                              (key == "kind" ? kind : api_version) = *text;
                            } else if (key == "metadata") {
                              metadata = v;
                            } else if (key == "spec") {
                              spec = v;
                              has_spec = true;
                            }
                            return {};  // status: written by controllers, ignored
                          });
  if (!s) return s;
  if (kind.empty()) return err(ctx, doc, "kind is required");
  const bool istio = api_version == "security.istio.io/v1" || api_version == "security.istio.io/v1beta1";
  if (kind == "AuthorizationPolicy" || kind == "PeerAuthentication" || kind == "RequestAuthentication") {
    if (!istio) {
      return err(ctx, doc,
                 kind + ": apiVersion must be security.istio.io/v1 or security.istio.io/v1beta1, not \"" +
                     api_version + "\"");
    }
  } else if (kind == "Workload" || kind == "Mesh" || kind == "OPAPolicy" || kind == "ServiceEndpoints" ||
             (kind == "Service" && is_security_group(api_version))) {
    if (api_version != "meshguard.io/v1alpha1")
      return err(ctx, doc, kind + ": apiVersion must be meshguard.io/v1alpha1");
  } else if (kind == "DestinationRule" || is_networking_kind(kind, api_version)) {
    // A DestinationRule of any group is refused unless networking.istio.io (it is honoured).
    if (auto st = check_networking_version(ctx, doc, kind, api_version); !st) return st;
  } else if (is_security_group(api_version)) {
    return err(ctx, doc,
               "unknown kind \"" + kind + "\" in " + api_version +
                   " (meshguard enforces AuthorizationPolicy, PeerAuthentication, RequestAuthentication, "
                   "Workload, Mesh, OPAPolicy, Service and ServiceEndpoints)",
               "policy.unknown_kind");
  } else {
    return err(ctx, doc, "apiVersion is required", "policy.unknown_kind");
  }
  Meta meta;
  meta.source = ctx.source;
  meta.line = line_of(doc);
  meta.order = ctx.order;
  meta.document = std::string(ctx.document);
  if (auto st = parse_meta(ctx, metadata.IsDefined() ? metadata : YAML::Node(), meta); !st) {
    if (!metadata.IsDefined()) return err(ctx, doc, "metadata is required");
    return st;
  }
  const YAML::Node spec_node = has_spec ? spec : YAML::Node(YAML::NodeType::Null);
  if (kind != "Mesh") {
    if (auto st = place_in_namespace(ctx, metadata, meta); !st) return st;
    if (auto st = place_in_mesh(ctx, metadata, meta); !st) return st;
  }
  if (kind == "Mesh") {
    // "default" is the default mesh; any other name is a further mesh (docs/MESHES.md).
    if (!is_dns_label(meta.name)) {
      return err(ctx, std::as_const(metadata)["name"],
                 "Mesh: metadata.name must be a mesh name (a DNS label), not \"" + meta.name + "\"",
                 "policy.bad_mesh_name");
    }
    if (!ctx.requested_mesh.empty() && meta.name != ctx.requested_mesh) {
      return err(ctx, std::as_const(metadata)["name"],
                 "Mesh " + meta.name + " given with --mesh " + std::string(ctx.requested_mesh) +
                     " (a Mesh is applied without --mesh, or with its own name)",
                 "policy.mesh_mismatch");
    }
    meta.ns.clear();  // cluster-scoped: metadata.namespace (and -n) is ignored
    meta.mesh = meta.name == kDefaultMesh ? std::string() : meta.name;
    Mesh m;
    m.meta = meta;
    if (auto st = parse_mesh(ctx, spec_node, m); !st) return st;
    out.meshes.push_back(std::move(m));
    return {};
  }
  if (kind == "OPAPolicy") {
    OpaPolicy p;
    p.meta = meta;
    if (auto st = parse_opa_policy(ctx, spec_node, doc, p); !st) return st;
    out.opa_policies.push_back(std::move(p));
    return {};
  }
  if (kind == "Service" || kind == "ServiceEndpoints") {
    // Their names are DNS names (details.default.svc.cluster.local), so both parts must be labels.
    for (const std::string* part : {&meta.name, &meta.ns}) {
      if (!is_dns_label(*part)) {
        return err(
            ctx, metadata.IsDefined() ? metadata : doc,
            kind +
                ": metadata name and namespace must be DNS labels (lower case letters, digits and '-'), "
                "not \"" +
                *part + "\"",
            "policy.bad_value");
      }
    }
  }
  if (kind == "Service") {
    Service svc;
    svc.meta = meta;
    if (auto st = parse_service(ctx, spec_node, svc); !st) return st;
    out.services.push_back(std::move(svc));
    return {};
  }
  if (kind == "ServiceEndpoints") {
    ServiceEndpoints e;
    e.meta = meta;
    if (auto st = parse_service_endpoints(ctx, spec_node, e); !st) return st;
    out.service_endpoints.push_back(std::move(e));
    return {};
  }
  if (kind == "DestinationRule") {
    DestinationRule r;
    r.meta = meta;
    if (auto st = parse_destination_rule(ctx, spec_node, r); !st) return st;
    out.destination_rules.push_back(std::move(r));
    return {};
  }
  if (kind == "Gateway") {
    Gateway g;
    g.meta = meta;
    if (auto st = parse_gateway(ctx, spec_node, g); !st) return st;
    out.gateways.push_back(std::move(g));
    return {};
  }
  if (kind == "VirtualService") {
    VirtualService vs;
    vs.meta = meta;
    if (auto st = parse_virtual_service(ctx, spec_node, vs); !st) return st;
    out.virtual_services.push_back(std::move(vs));
    return {};
  }
  if (kind == "ServiceEntry") {
    ServiceEntry se;
    se.meta = meta;
    if (auto st = parse_service_entry(ctx, spec_node, se); !st) return st;
    out.service_entries.push_back(std::move(se));
    return {};
  }
  if (kind == "AuthorizationPolicy") {
    AuthorizationPolicy p;
    p.meta = meta;
    if (auto st = parse_authorization_policy(ctx, spec_node, p); !st) return st;
    out.authorization_policies.push_back(std::move(p));
  } else if (kind == "PeerAuthentication") {
    PeerAuthentication p;
    p.meta = meta;
    if (auto st = parse_peer_authentication(ctx, spec_node, p); !st) return st;
    out.peer_authentications.push_back(std::move(p));
  } else if (kind == "RequestAuthentication") {
    RequestAuthentication r;
    r.meta = meta;
    if (auto st = parse_request_authentication(ctx, spec_node, r); !st) return st;
    out.request_authentications.push_back(std::move(r));
  } else {
    Workload w;
    w.meta = meta;
    if (auto st = parse_workload(ctx, spec_node, w); !st) return st;
    out.workloads.push_back(std::move(w));
  }
  return {};
}

bool has_content(std::string_view body) {
  size_t pos = 0;
  while (pos < body.size()) {
    size_t eol = body.find('\n', pos);
    if (eol == std::string_view::npos) eol = body.size();
    auto line = body.substr(pos, eol - pos);
    const auto first = line.find_first_not_of(" \t\r");
    if (first != std::string_view::npos && line[first] != '#') return true;
    pos = eol + 1;
  }
  return false;
}

}  // namespace

Result<ResourceSet> parse_resources(std::string_view yaml, std::string_view source, std::string_view ns,
                                    std::string_view mesh) {
  if (!mesh.empty() && !is_dns_label(mesh)) {
    return fail("policy.bad_mesh_name",
                "mesh \"" + std::string(mesh) + "\" is not a mesh name (a DNS label)");
  }
  if (!ns.empty() && !is_dns_label(ns)) {
    return fail("policy.bad_namespace",
                "namespace \"" + std::string(ns) +
                    "\" is not a namespace name (lower case letters, digits and '-', at most 63)");
  }
  Ctx ctx;
  ctx.source = std::string(source);
  ctx.requested_ns = ns;
  ctx.requested_mesh = mesh;
  // Real documents spend well under one unit per byte; aliases are what could exceed this. Each
  // document is also capped at what it would get parsed alone, so a document accepted here is
  // accepted again from its Meta::document (the control plane re-parses stored documents).
  auto budget_for = [](size_t bytes) { return std::max<size_t>(100000, bytes * 2); };
  size_t remaining = budget_for(yaml.size());
  ResourceSet out;
  ctx.order = -1;
  // A document placed in a namespace is parsed again, from inside this parse (place_in_namespace).
  struct Restore {
    const Ctx* previous;
    ~Restore() { current_ctx = previous; }
  } restore{current_ctx};
  current_ctx = &ctx;
  for (const auto& text : split_documents(yaml)) {
    ++ctx.order;
    ctx.line_offset = text.first_line;
    ctx.document = text.text;
    ctx.body_offset = static_cast<size_t>(text.body.data() - text.text.data());
    const size_t allowed = std::min(remaining, budget_for(text.text.size()));
    ctx.budget = allowed;
    try {
      const auto doc = YAML::Load(std::string(text.body));
      if (!doc.IsDefined() || doc.IsNull()) {
        // Empty documents (only blanks and comments) are fine; anything else that yaml-cpp
        // reads as "nothing" is malformed, and refusing it keeps the set all-or-nothing.
        if (has_content(text.body)) {
          return fail("policy.bad_yaml", ctx.source + ":" + std::to_string(ctx.line_offset + 1) +
                                             ": malformed YAML: the document is not a resource");
        }
        continue;
      }
      if (auto s = parse_document(ctx, doc, out); !s) return fail(s.error());
    } catch (const YAML::Exception& e) {
      const int line = (e.mark.line >= 0 ? e.mark.line : 0) + 1 + ctx.line_offset;
      return fail("policy.bad_yaml", ctx.source + ":" + std::to_string(line) + ": malformed YAML: " + e.msg);
    } catch (const std::exception& e) {
      return fail("policy.bad_yaml",
                  ctx.source + ":" + std::to_string(ctx.line_offset + 1) + ": malformed YAML: " + e.what());
    }
    remaining -= allowed - ctx.budget;  // an empty document (the `continue` above) spends nothing
  }
  keep_the_later_of_each_name(out);
  return out;
}

}  // namespace mg::policy
