#include "sim/trace.h"

#include <iostream>

namespace replog::sim {

Trace::Trace(bool echo) : echo_(echo) { crypto_generichash_init(&state_, nullptr, 0, 16); }

void Trace::line(const std::string& text) {
  std::string l = text + "\n";
  crypto_generichash_update(&state_, reinterpret_cast<const unsigned char*>(l.data()), l.size());
  ++lines_;
  recent_.push_back(text);
  if (recent_.size() > kRecentLines) recent_.pop_front();
  if (echo_) std::cerr << text << "\n";
}

std::string Trace::hash() {
  unsigned char out[16];
  crypto_generichash_final(&state_, out, sizeof out);
  static const char* digits = "0123456789abcdef";
  std::string hex;
  for (unsigned char b : out) hex += {digits[b >> 4], digits[b & 15]};
  return hex;
}

}  // namespace replog::sim
