// librados / librbd keep process-lifetime allocations (global contexts, thread-local caches)
// that LeakSanitizer reports at exit in the ASan build. They are not ours: silence only them.
extern "C" const char* __lsan_default_suppressions() {  // NOLINT: sanitizer hook name
  return "leak:librados.so\nleak:librbd.so\nleak:libceph-common.so\n";
}
