#include "telemetry/metrics.h"

#include <charconv>
#include <cstdio>
#include <mutex>

namespace mg::telemetry {

void Histogram::observe(double value) {
  if (value < 0) value = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (value <= bounds_[i]) {
      buckets_[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

uint64_t Histogram::bucket(size_t i) const {
  uint64_t total = 0;
  for (size_t j = 0; j <= i && j < buckets_.size(); ++j) total += buckets_[j].load(std::memory_order_relaxed);
  return total;
}

void append_labels(std::string& out, const Labels& labels) {
  if (labels.empty()) return;
  out += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    // Runs without a character to escape are appended whole (label values rarely have one).
    size_t run = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      const char c = v[i];
      if (c != '\\' && c != '"' && c != '\n') continue;
      out.append(v, run, i - run);
      out += c == '\n' ? "\\n" : c == '"' ? "\\\"" : "\\\\";
      run = i + 1;
    }
    out.append(v, run, std::string::npos);
    out += '"';
  }
  out += '}';
}

std::string render_labels(const Labels& labels) {
  std::string out;
  append_labels(out, labels);
  return out;
}

thread_local Registry::ThreadCacheState* Registry::t_cache_ = nullptr;

Registry::ThreadCache::ThreadCache(const Registry& owner)
    : state_(std::make_unique<ThreadCacheState>()), previous_(t_cache_) {
  state_->owner = &owner;
  owner.bound_thread_caches_.fetch_add(1, std::memory_order_acq_rel);
  t_cache_ = state_.get();
}

Registry::ThreadCache::ThreadCache(ThreadCache&& other) noexcept
    : state_(std::move(other.state_)), previous_(other.previous_) {}

Registry::ThreadCache::~ThreadCache() {
  if (!state_) return;  // moved from
  if (t_cache_ == state_.get()) t_cache_ = previous_;
  state_->owner->bound_thread_caches_.fetch_sub(1, std::memory_order_acq_rel);
}

Registry::ThreadCache Registry::bind_thread_cache() const { return ThreadCache(*this); }

void Registry::describe(std::string_view name, std::string_view help) {
  std::unique_lock lock(mutex_);
  help_[std::string(name)] = std::string(help);
}

Registry::Series& Registry::series(std::string_view name, const Labels& labels, MetricType type, Buckets bounds) {
  ThreadCacheState* cache = t_cache_;
  if (!cache || cache->owner != this) return locked_series(name, render_labels(labels), type, bounds);
  std::string& key = cache->scratch;
  key.assign(name);
  key.push_back('\0');
  const size_t labels_at = key.size();
  append_labels(key, labels);
  if (auto it = cache->entries.find(key); it != cache->entries.end() && it->second.type == type) {
    return *it->second.series;
  }
  Series& s = locked_series(name, key.substr(labels_at), type, bounds);
  if (cache->entries.size() >= kThreadCacheMax) cache->entries.clear();
  cache->entries.insert_or_assign(key, ThreadCacheState::Entry{&s, type});
  return s;
}

Registry::Series& Registry::locked_series(std::string_view name, const std::string& key, MetricType type,
                                          Buckets bounds) {
  {
    std::shared_lock lock(mutex_);
    auto f = families_.find(name);
    if (f != families_.end()) {
      auto s = f->second.series.find(key);
      if (s != f->second.series.end() && f->second.type == type) return s->second;
    }
  }
  std::unique_lock lock(mutex_);
  auto& family = families_[std::string(name)];
  if (family.series.empty()) family.type = type;
  // A name used with two types is a programming error; keep serving without crashing by
  // giving the mismatched caller a private, unexported series.
  if (family.type != type) {
    auto& orphan = families_[std::string(name) + "_type_conflict"];
    orphan.type = type;
    return series_for(orphan, key, type, bounds);
  }
  return series_for(family, key, type, bounds);
}

Registry::Series& Registry::series_for(Family& family, const std::string& key, MetricType type, Buckets bounds) {
  auto& s = family.series[key];
  switch (type) {
    case MetricType::Counter: if (!s.counter) s.counter = std::make_unique<Counter>(); break;
    case MetricType::Gauge: if (!s.gauge) s.gauge = std::make_unique<Gauge>(); break;
    case MetricType::Histogram: if (!s.histogram) s.histogram = std::make_unique<Histogram>(bounds); break;
  }
  return s;
}

bool Registry::remove(std::string_view name, const Labels& labels) {
  std::unique_lock lock(mutex_);
  if (bound_thread_caches_.load(std::memory_order_acquire) != 0) return false;
  auto family = families_.find(name);
  if (family == families_.end()) return false;
  if (family->second.series.erase(render_labels(labels)) == 0) return false;
  if (family->second.series.empty()) families_.erase(family);
  return true;
}

Counter& Registry::counter(std::string_view name, const Labels& labels) {
  return *series(name, labels, MetricType::Counter).counter;
}
Gauge& Registry::gauge(std::string_view name, const Labels& labels) {
  return *series(name, labels, MetricType::Gauge).gauge;
}
Histogram& Registry::histogram(std::string_view name, const Labels& labels) {
  return *series(name, labels, MetricType::Histogram).histogram;
}
Histogram& Registry::histogram(std::string_view name, const Labels& labels, Buckets bounds) {
  return *series(name, labels, MetricType::Histogram, bounds).histogram;
}

uint64_t Registry::counter_value(std::string_view name, const Labels& labels) const {
  std::shared_lock lock(mutex_);
  auto f = families_.find(name);
  if (f == families_.end() || f->second.type != MetricType::Counter) return 0;
  auto s = f->second.series.find(render_labels(labels));
  return s == f->second.series.end() ? 0 : s->second.counter->value();
}

namespace {
std::string with_le(const std::string& labels, const std::string& le) {
  if (labels.empty()) return "{le=\"" + le + "\"}";
  return labels.substr(0, labels.size() - 1) + ",le=\"" + le + "\"}";
}
// Whole numbers as integers (le="3600000"), others as the shortest text that reads back as `v`
// (0.1, not 0.10000000000000001).
std::string format_double(double v) {
  char buf[64];
  if (v == static_cast<double>(static_cast<int64_t>(v)) && v > -1e15 && v < 1e15)
    return std::to_string(static_cast<int64_t>(v));
  auto end = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed).ptr;
  return std::string(buf, end);
}
}  // namespace

std::string Registry::render_prometheus() const {
  std::shared_lock lock(mutex_);
  std::string out;
  for (const auto& [name, family] : families_) {
    auto help = help_.find(name);
    if (help != help_.end()) out += "# HELP " + name + " " + help->second + "\n";
    const char* type = family.type == MetricType::Counter ? "counter"
                       : family.type == MetricType::Gauge ? "gauge"
                                                          : "histogram";
    out += "# TYPE " + name + " " + type + "\n";
    for (const auto& [labels, s] : family.series) {
      switch (family.type) {
        case MetricType::Counter:
          out += name + labels + " " + std::to_string(s.counter->value()) + "\n";
          break;
        case MetricType::Gauge:
          out += name + labels + " " + std::to_string(s.gauge->value()) + "\n";
          break;
        case MetricType::Histogram: {
          const auto& h = *s.histogram;
          for (size_t i = 0; i < h.bounds().size(); ++i) {
            out += name + "_bucket" + with_le(labels, format_double(h.bounds()[i])) + " " +
                   std::to_string(h.bucket(i)) + "\n";
          }
          out += name + "_bucket" + with_le(labels, "+Inf") + " " + std::to_string(h.count()) + "\n";
          out += name + "_sum" + labels + " " + format_double(h.sum()) + "\n";
          out += name + "_count" + labels + " " + std::to_string(h.count()) + "\n";
          break;
        }
      }
    }
  }
  return out;
}

}  // namespace mg::telemetry
