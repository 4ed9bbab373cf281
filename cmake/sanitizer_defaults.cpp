// Sanitizer builds only (MESHGUARD_SANITIZE): the options every instrumented executable starts
// with, so `ctest` in build-asan behaves the same however it is launched. ASAN_OPTIONS given at
// run time are parsed after these and still win.
//
// intercept_tls_get_addr=0: LeakSanitizer (clang 14) records each dynamic TLS block seen through
// __tls_get_addr and guesses its bounds from glibc 2.19's block header when the block's address
// is 16 bytes past a page boundary. Since glibc 2.25 those blocks come from malloc and carry no
// such header, so now and then the guess yields a range like [0x398, …) and the leak check at
// exit dies with "Tracer caught signal 11" inside ScanRangeForPointers (google/sanitizers#1322).
// meshguard-proxy hits it in control-plane mode: the gRPC agent is a dlopen'ed module, so its
// thread-locals are exactly such blocks. Without the interceptor LSan does not scan dynamic TLS,
// which can only add false leak reports (an object kept alive by a dlopen'ed module's
// thread_local), never hide a leak.
extern "C" __attribute__((visibility("default"), used)) const char* __asan_default_options() {
  return "intercept_tls_get_addr=0";
}
