#include "jwt/jwks_fetcher.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "crypto/openssl.h"

namespace mg::jwt {

namespace {

using Clock = std::chrono::steady_clock;

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = lower(c);
  return out;
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

// Waits until fd is readable/writable or the deadline passes.
bool wait_fd(int fd, bool for_write, Clock::time_point deadline) {
  for (;;) {
    int left = remaining_ms(deadline);
    if (left == 0) return false;
    pollfd p{fd, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
    int rc = ::poll(&p, 1, left);
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return false;
  }
}

Result<Fd> connect_checked(const Url& url, Clock::time_point deadline) {
  if (is_forbidden_host_name(url.host)) return fail("jwks.forbidden_address", "refusing to fetch JWKS from metadata host '" + url.host + "'");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(url.port);
  // getaddrinfo has no timeout of its own; the resolver's own limits apply.
  int rc = ::getaddrinfo(url.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) return fail("jwks.resolve_failed", "cannot resolve '" + url.host + "': " + gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(res, freeaddrinfo);
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    if (is_forbidden_address(ai->ai_addr))
      return fail("jwks.forbidden_address", "refusing to fetch JWKS from '" + url.host + "': it resolves to a link-local or metadata address");
  }
  std::string last = "no address";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
    if (fd.get() < 0) {
      last = std::strerror(errno);
      continue;
    }
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0) return fd;
    if (errno != EINPROGRESS) {
      last = std::strerror(errno);
      continue;
    }
    if (!wait_fd(fd.get(), true, deadline)) return fail("jwks.timeout", "timed out connecting to '" + url.host + "'");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err == 0) return fd;
    last = std::strerror(err);
  }
  return fail("jwks.connect_failed", "cannot connect to '" + url.host + "': " + last);
}

// A byte stream over a plain socket or TLS, every call bounded by the deadline.
class Stream {
 public:
  Stream(Fd fd, Clock::time_point deadline) : fd_(std::move(fd)), deadline_(deadline) {}

  mg::Status start_tls(const Url& url, const FetchOptions& options) {
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    if (!ctx_) return fail(crypto::openssl_error("jwks.tls", "cannot create TLS context"));
    SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
    int ok = options.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx_.get())
                                     : SSL_CTX_load_verify_locations(ctx_.get(), options.ca_file.c_str(), nullptr);
    if (ok != 1) return fail(crypto::openssl_error("jwks.tls", "cannot load trust anchors"));
    ssl_.reset(SSL_new(ctx_.get()));
    if (!ssl_ || SSL_set_fd(ssl_.get(), fd_.get()) != 1) return fail(crypto::openssl_error("jwks.tls", "cannot create TLS session"));
    in6_addr a6;
    in_addr a4;
    bool ip_literal = inet_pton(AF_INET, url.host.c_str(), &a4) == 1 || inet_pton(AF_INET6, url.host.c_str(), &a6) == 1;
    if (ip_literal) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), url.host.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl_.get(), url.host.c_str());
      SSL_set1_host(ssl_.get(), url.host.c_str());
    }
    for (;;) {
      ERR_clear_error();
      int rc = SSL_connect(ssl_.get());
      if (rc == 1) break;
      int err = SSL_get_error(ssl_.get(), rc);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        if (!wait_fd(fd_.get(), err == SSL_ERROR_WANT_WRITE, deadline_)) return fail("jwks.timeout", "timed out in the TLS handshake");
        continue;
      }
      long verify = SSL_get_verify_result(ssl_.get());
      if (verify != X509_V_OK)
        return fail("jwks.tls_verify", std::string("server certificate rejected: ") + X509_verify_cert_error_string(verify));
      return fail(crypto::openssl_error("jwks.tls", "TLS handshake failed"));
    }
    if (SSL_get_verify_result(ssl_.get()) != X509_V_OK) return fail("jwks.tls_verify", "server certificate rejected");
    return {};
  }

  mg::Status write_all(std::string_view data) {
    while (!data.empty()) {
      long n;
      if (ssl_) {
        ERR_clear_error();
        int rc = SSL_write(ssl_.get(), data.data(), static_cast<int>(data.size()));
        if (rc <= 0) {
          int err = SSL_get_error(ssl_.get(), rc);
          if ((err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) && wait_fd(fd_.get(), err == SSL_ERROR_WANT_WRITE, deadline_)) continue;
          return fail("jwks.io", "TLS write failed or timed out");
        }
        n = rc;
      } else {
        n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0) {
          if ((errno == EAGAIN || errno == EINTR) && wait_fd(fd_.get(), true, deadline_)) continue;
          return fail("jwks.io", "write failed or timed out");
        }
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return {};
  }

  // Appends up to `max` bytes; 0 at end of stream.
  Result<size_t> read_some(std::string& out, size_t max) {
    char buf[16384];
    size_t want = std::min(max, sizeof buf);
    for (;;) {
      if (ssl_) {
        ERR_clear_error();
        int rc = SSL_read(ssl_.get(), buf, static_cast<int>(want));
        if (rc > 0) {
          out.append(buf, static_cast<size_t>(rc));
          return static_cast<size_t>(rc);
        }
        int err = SSL_get_error(ssl_.get(), rc);
        if (err == SSL_ERROR_ZERO_RETURN) return size_t{0};
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
          if (!wait_fd(fd_.get(), err == SSL_ERROR_WANT_WRITE, deadline_)) return fail("jwks.timeout", "timed out reading the response");
          continue;
        }
        // Servers often close without close_notify once the body is complete.
        if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_SSL) {
          ERR_clear_error();
          return size_t{0};
        }
        return fail("jwks.io", "TLS read failed");
      }
      long n = ::recv(fd_.get(), buf, want, 0);
      if (n > 0) {
        out.append(buf, static_cast<size_t>(n));
        return static_cast<size_t>(n);
      }
      if (n == 0) return size_t{0};
      if (errno == EAGAIN || errno == EINTR) {
        if (!wait_fd(fd_.get(), false, deadline_)) return fail("jwks.timeout", "timed out reading the response");
        continue;
      }
      return fail("jwks.io", std::string("read failed: ") + std::strerror(errno));
    }
  }

 private:
  Fd fd_;
  Clock::time_point deadline_;
  crypto::SslCtxPtr ctx_;
  crypto::SslPtr ssl_;
};

Result<std::string> decode_chunked(std::string_view body, size_t max) {
  std::string out;
  for (;;) {
    size_t eol = body.find("\r\n");
    if (eol == std::string_view::npos) return fail("jwks.bad_response", "truncated chunked body");
    std::string_view size_line = body.substr(0, eol);
    if (size_t semi = size_line.find(';'); semi != std::string_view::npos) size_line = size_line.substr(0, semi);
    if (size_line.empty() || size_line.size() > 8) return fail("jwks.bad_response", "bad chunk size");
    size_t size = 0;
    for (char c : size_line) {
      int v = (c >= '0' && c <= '9') ? c - '0' : (lower(c) >= 'a' && lower(c) <= 'f') ? lower(c) - 'a' + 10 : -1;
      if (v < 0) return fail("jwks.bad_response", "bad chunk size");
      size = size * 16 + static_cast<size_t>(v);
    }
    body.remove_prefix(eol + 2);
    if (size == 0) return out;
    if (body.size() < size + 2) return fail("jwks.bad_response", "truncated chunked body");
    if (out.size() + size > max) return fail("jwks.too_large", "JWKS response larger than the limit");
    out.append(body.substr(0, size));
    body.remove_prefix(size + 2);
  }
}

}  // namespace

Result<Url> parse_url(std::string_view url) {
  for (unsigned char c : url)
    if (c <= 0x20 || c == 0x7f) return fail("jwks.bad_url", "URL contains whitespace or control characters");
  Url out;
  std::string_view rest;
  if (url.rfind("https://", 0) == 0) {
    out.https = true;
    out.port = 443;
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    out.port = 80;
    rest = url.substr(7);
  } else {
    return fail("jwks.bad_url", "jwksUri must start with http:// or https://");
  }
  size_t path_start = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, path_start);
  std::string_view path = path_start == std::string_view::npos ? std::string_view("/") : rest.substr(path_start);
  if (size_t hash = path.find('#'); hash != std::string_view::npos) path = path.substr(0, hash);
  if (path.empty() || path.front() != '/') out.path_and_query = "/" + std::string(path);
  else out.path_and_query = std::string(path);
  if (authority.find('@') != std::string_view::npos) return fail("jwks.bad_url", "user info in jwksUri is not allowed");
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("jwks.bad_url", "unterminated IPv6 literal");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail("jwks.bad_url", "garbage after IPv6 literal");
      port_text = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty()) return fail("jwks.bad_url", "jwksUri has no host");
  if (!port_text.empty()) {
    unsigned long port = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9' || port > 65535) return fail("jwks.bad_url", "bad port in jwksUri");
      port = port * 10 + static_cast<unsigned long>(c - '0');
    }
    if (port == 0 || port > 65535) return fail("jwks.bad_url", "bad port in jwksUri");
    out.port = static_cast<uint16_t>(port);
  }
  return out;
}

bool is_forbidden_host_name(std::string_view host) {
  std::string h = to_lower(host);
  while (!h.empty() && h.back() == '.') h.pop_back();
  return h == "metadata.google.internal" || h == "metadata" || h == "metadata.goog" || h == "instance-data" ||
         h == "instance-data.ec2.internal";
}

bool is_forbidden_address(const sockaddr* addr) {
  auto v4_forbidden = [](uint32_t host_order) {
    if ((host_order & 0xffff0000u) == 0xa9fe0000u) return true;  // 169.254.0.0/16 (incl. .169.254)
    if (host_order == 0x646464c8u) return true;                   // 100.100.100.200 (Alibaba Cloud metadata)
    return false;
  };
  if (addr->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    return v4_forbidden(ntohl(in->sin_addr.s_addr));
  }
  if (addr->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    const unsigned char* b = in6->sin6_addr.s6_addr;
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return true;  // fe80::/10
    static const unsigned char ec2[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54};
    if (std::memcmp(b, ec2, 16) == 0) return true;  // fd00:ec2::254
    // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible forms carry an IPv4 address.
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(b, mapped, 12) == 0) {
      uint32_t v4 = (uint32_t(b[12]) << 24) | (uint32_t(b[13]) << 16) | (uint32_t(b[14]) << 8) | b[15];
      return v4_forbidden(v4);
    }
    return false;
  }
  return true;  // not IP at all: refuse
}

Result<std::string> http_get(const std::string& url_text, const FetchOptions& options) {
  auto url = parse_url(url_text);
  if (!url) return fail(url.error());
  auto deadline = Clock::now() + std::chrono::milliseconds(options.timeout_ms > 0 ? options.timeout_ms : 1);
  auto fd = connect_checked(*url, deadline);
  if (!fd) return fail(fd.error());
  Stream stream(std::move(*fd), deadline);
  if (url->https) {
    if (auto st = stream.start_tls(*url, options); !st) return fail(st.error());
  }
  bool default_port = url->port == (url->https ? 443 : 80);
  std::string host_header = url->host.find(':') != std::string::npos ? "[" + url->host + "]" : url->host;
  if (!default_port) host_header += ":" + std::to_string(url->port);
  std::string request = "GET " + url->path_and_query + " HTTP/1.1\r\nHost: " + host_header +
                        "\r\nAccept: application/json\r\nUser-Agent: meshguard-jwks\r\nConnection: close\r\n\r\n";
  if (auto st = stream.write_all(request); !st) return fail(st.error());

  constexpr size_t kMaxHeaderBytes = 16 * 1024;
  std::string raw;
  size_t header_end = std::string::npos;
  size_t content_length = std::string::npos;
  bool chunked = false;
  // Chunk framing adds a little to the body; allow for it in the raw cap.
  size_t raw_cap = kMaxHeaderBytes + options.max_body_bytes + options.max_body_bytes / 8 + 1024;
  for (;;) {
    if (header_end == std::string::npos) {
      header_end = raw.find("\r\n\r\n");
      if (header_end == std::string::npos && raw.size() > kMaxHeaderBytes) return fail("jwks.bad_response", "response headers too large");
      if (header_end != std::string::npos) {
        std::string_view head(raw.data(), header_end);
        size_t eol = head.find("\r\n");
        std::string_view status_line = head.substr(0, eol);
        if (status_line.size() < 12 || status_line.rfind("HTTP/1.", 0) != 0)
          return fail("jwks.bad_response", "not an HTTP/1.x response");
        std::string_view code = status_line.substr(9, 3);
        if (code != "200") return fail("jwks.http_status", "JWKS server answered " + std::string(status_line.substr(9)));
        std::string_view fields = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
        while (!fields.empty()) {
          size_t e = fields.find("\r\n");
          std::string_view line = fields.substr(0, e);
          fields = e == std::string_view::npos ? std::string_view() : fields.substr(e + 2);
          size_t colon = line.find(':');
          if (colon == std::string_view::npos) continue;
          std::string name = to_lower(line.substr(0, colon));
          std::string_view value = line.substr(colon + 1);
          while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
          while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
          if (name == "content-length") {
            size_t n = 0;
            if (value.empty() || value.size() > 12) return fail("jwks.bad_response", "bad Content-Length");
            for (char c : value) {
              if (c < '0' || c > '9') return fail("jwks.bad_response", "bad Content-Length");
              n = n * 10 + static_cast<size_t>(c - '0');
            }
            content_length = n;
          } else if (name == "transfer-encoding" && to_lower(value).find("chunked") != std::string::npos) {
            chunked = true;
          }
        }
        if (content_length != std::string::npos && content_length > options.max_body_bytes)
          return fail("jwks.too_large", "JWKS response larger than the limit");
      }
    }
    if (header_end != std::string::npos && !chunked && content_length != std::string::npos &&
        raw.size() - (header_end + 4) >= content_length)
      break;
    if (raw.size() > raw_cap) return fail("jwks.too_large", "JWKS response larger than the limit");
    auto n = stream.read_some(raw, raw_cap + 1 - raw.size());
    if (!n) return fail(n.error());
    if (*n == 0) break;
  }
  if (header_end == std::string::npos) return fail("jwks.bad_response", "connection closed before the response headers");
  std::string_view body(raw.data() + header_end + 4, raw.size() - header_end - 4);
  if (chunked) return decode_chunked(body, options.max_body_bytes);
  if (content_length != std::string::npos) {
    if (body.size() < content_length) return fail("jwks.bad_response", "connection closed before the end of the body");
    body = body.substr(0, content_length);
  }
  if (body.size() > options.max_body_bytes) return fail("jwks.too_large", "JWKS response larger than the limit");
  return std::string(body);
}

std::string openid_configuration_url(std::string_view issuer) {
  while (!issuer.empty() && issuer.back() == '/') issuer.remove_suffix(1);
  return std::string(issuer) + "/.well-known/openid-configuration";
}

Result<std::string> jwks_uri_of_discovery(std::string_view document) {
  auto doc = nlohmann::json::parse(document, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return fail("jwks.bad_discovery", "OpenID discovery document is not a JSON object");
  auto it = doc.find("jwks_uri");
  if (it == doc.end() || !it->is_string())
    return fail("jwks.bad_discovery", "OpenID discovery document has no jwks_uri string");
  std::string uri = it->get<std::string>();
  if (auto url = parse_url(uri); !url)
    return fail("jwks.bad_discovery", "OpenID discovery jwks_uri: " + url.error().message);
  return uri;
}

// ---- JwksRefresher ----

JwksRefresher::JwksRefresher(std::shared_ptr<JwksProvider> provider, std::vector<Source> sources, Fetch fetch,
                             std::chrono::seconds interval, std::chrono::seconds retry_interval)
    : provider_(std::move(provider)),
      fetch_(std::move(fetch)),
      interval_(interval.count()),
      retry_interval_(retry_interval.count()) {
  if (!fetch_) {
    fetch_ = [](const std::string& uri, int timeout_ms) {
      FetchOptions o;
      o.timeout_ms = timeout_ms;
      return http_get(uri, o);
    };
  }
  for (auto& s : sources) {
    bool dup = false;
    for (const auto& st : states_) dup = dup || st.source.uri == s.uri;
    if (!dup) states_.push_back(State{std::move(s), 0, {}});
  }
}

std::vector<JwksRefresher::Source> JwksRefresher::sources_for(const std::vector<JwtRule>& rules) {
  std::vector<Source> out;
  for (const auto& r : rules) {
    const std::string& name = remote_keys_name(r);
    if (!name.empty()) out.push_back(Source{name, r.timeout_ms > 0 ? r.timeout_ms : 5000, discovers_keys(r)});
  }
  return out;
}

int64_t JwksRefresher::refresh_due(int64_t now) {
  std::vector<Source> due;
  {
    std::lock_guard lock(mu_);
    for (const auto& st : states_)
      if (st.next_due <= now) due.push_back(st.source);
  }
  // Fetch without holding the lock: a slow server must not block last_errors().
  std::vector<std::pair<std::string, std::string>> outcomes;  // uri, error ("" = ok)
  // Discovery is re-read at every refresh, so a provider that moves its jwks_uri is followed; the
  // jwks_uri goes through the same fetch (and address checks) as a configured jwksUri.
  auto fetch_keys = [this](const Source& s) -> Result<std::string> {
    if (!s.discover) return fetch_(s.uri, s.timeout_ms);
    auto document = fetch_(openid_configuration_url(s.uri), s.timeout_ms);
    if (!document) return fail(document.error().code, "OpenID discovery: " + document.error().message);
    auto jwks_uri = jwks_uri_of_discovery(*document);
    if (!jwks_uri) return fail(jwks_uri.error());
    return fetch_(*jwks_uri, s.timeout_ms);
  };
  for (const auto& s : due) {
    auto body = fetch_keys(s);
    std::string error;
    if (!body) {
      error = body.error().to_string();
    } else if (auto st = provider_->set_jwks_json(s.uri, *body); !st) {
      error = st.error().to_string();
    }
    outcomes.emplace_back(s.uri, std::move(error));
  }
  std::lock_guard lock(mu_);
  int64_t next = INT64_MAX;
  for (auto& st : states_) {
    for (const auto& [uri, error] : outcomes) {
      if (uri != st.source.uri) continue;
      st.last_error = error;
      st.next_due = now + (error.empty() ? interval_ : retry_interval_);
    }
    next = std::min(next, st.next_due);
  }
  return next;
}

void JwksRefresher::run(std::stop_token stop) {
  std::mutex wait_mu;
  while (!stop.stop_requested()) {
    auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    int64_t next = refresh_due(now);
    int64_t wait_s = next == INT64_MAX ? interval_ : std::max<int64_t>(1, next - now);
    std::unique_lock lock(wait_mu);
    wake_.wait_for(lock, stop, std::chrono::seconds(wait_s), [] { return false; });
  }
}

std::map<std::string, std::string> JwksRefresher::last_errors() const {
  std::lock_guard lock(mu_);
  std::map<std::string, std::string> out;
  for (const auto& st : states_) out[st.source.uri] = st.last_error;
  return out;
}

}  // namespace mg::jwt
