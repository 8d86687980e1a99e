// Appender: printf into a fixed buffer the runtime owns (ground rule 3);
// appends past the end are silently truncated, never overflow.
#ifndef MAPGUARD_APPENDER_H
#define MAPGUARD_APPENDER_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

namespace mapguard {

class Appender {
 public:
  Appender(char *buf, size_t cap) : buf_(buf), cap_(cap) { buf_[0] = 0; }
  void operator()(const char *fmt, ...) __attribute__((format(printf, 2, 3))) {
    if (len_ + 1 >= cap_) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf_ + len_, cap_ - len_, fmt, ap);
    va_end(ap);
    if (n > 0) len_ += size_t(n) < cap_ - len_ ? size_t(n) : cap_ - len_ - 1;
  }
  // Drops the last n characters (to reopen a just-closed JSON object).
  void Unappend(size_t n) {
    len_ = n < len_ ? len_ - n : 0;
    buf_[len_] = 0;
  }
  const char *data() const { return buf_; }
  size_t size() const { return len_; }

 private:
  char *buf_;
  size_t cap_;
  size_t len_ = 0;
};

}  // namespace mapguard

#endif  // MAPGUARD_APPENDER_H
