#pragma once
// Checking what an error says: the message of the exception a call throws, and substring search.

#include <string>

namespace hydra::test {

/// The what() of the E that f() throws, or "<nothing thrown>" when it returns normally.
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "<nothing thrown>";
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

} // namespace hydra::test
