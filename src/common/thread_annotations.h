// common/thread_annotations.h — Clang thread-safety annotations (MG_GUARDED_BY, MG_REQUIRES, ...) and a
// mutex they can name. libstdc++'s std::mutex carries no capability attribute, so members guarded
// by one cannot be checked; mg::Mutex is a std::mutex that can. Clang builds compile with
// -Wthread-safety (top CMakeLists.txt): a guarded member touched without its lock fails the build.
// Under other compilers the macros expand to nothing.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define MG_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define MG_THREAD_ANNOTATION(x)
#endif

#define MG_CAPABILITY(x) MG_THREAD_ANNOTATION(capability(x))
#define MG_SCOPED_CAPABILITY MG_THREAD_ANNOTATION(scoped_lockable)
#define MG_GUARDED_BY(x) MG_THREAD_ANNOTATION(guarded_by(x))
#define MG_PT_GUARDED_BY(x) MG_THREAD_ANNOTATION(pt_guarded_by(x))
#define MG_REQUIRES(...) MG_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define MG_EXCLUDES(...) MG_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define MG_ACQUIRE(...) MG_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define MG_RELEASE(...) MG_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define MG_ASSERT_CAPABILITY(x) MG_THREAD_ANNOTATION(assert_capability(x))
#define MG_NO_THREAD_SAFETY_ANALYSIS MG_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace mg {

class MG_CAPABILITY("mutex") Mutex {
 public:
  void lock() MG_ACQUIRE() { m_.lock(); }
  void unlock() MG_RELEASE() { m_.unlock(); }
  // Tells the analysis the caller holds the lock where it cannot see it (a condition variable's
  // predicate, run with the lock held).
  void assert_held() const MG_ASSERT_CAPABILITY(this) {}

 private:
  std::mutex m_;
};

// std::lock_guard / std::unique_lock for Mutex: locked for its scope, and unlock()/lock() in between
// (waiting on a CondVar unlocks and relocks it too).
class MG_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& m) MG_ACQUIRE(m) : m_(m) { m_.lock(); }
  ~MutexLock() MG_RELEASE() {
    if (locked_) m_.unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;
  void unlock() MG_RELEASE() {
    m_.unlock();
    locked_ = false;
  }
  void lock() MG_ACQUIRE() {
    m_.lock();
    locked_ = true;
  }

 private:
  friend class CondVar;
  Mutex& m_;
  bool locked_ = true;
};

// A condition variable waited on with a MutexLock held; returns with it held again.
class CondVar {
 public:
  void notify_all() { cv_.notify_all(); }
  void wait(MutexLock& lock) { cv_.wait(lock.m_); }
  // False once `deadline` has passed.
  template <class Clock, class Duration>
  bool wait_until(MutexLock& lock, std::chrono::time_point<Clock, Duration> deadline) {
    return cv_.wait_until(lock.m_, deadline) == std::cv_status::no_timeout;
  }

 private:
  std::condition_variable_any cv_;
};

}  // namespace mg
