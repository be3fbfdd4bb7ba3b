// Status and Result<T>: the one error style at replog's module boundaries.
//
// A Status is OK or carries a code and a one-line message that names what was
// wrong and where ("tasks.t1.due: expected time, got string"). Exceptions thrown
// by libraries (msgpack-c, nlohmann::json, cppzmq) are caught where they enter
// replog and turned into a Status; replog's own interfaces do not throw.
//
// Thread safety: plain values, no shared state.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace replog {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,  // input from a person or a caller is wrong
    kCorruption,       // stored or received bytes do not decode
    kNotFound,
    kIOError,
    kBusy,             // a lock is held by someone else
    kRefused,          // well-formed but refused (gap, skew, fork, quarantine)
    kStoreFull,        // the store's mapped space is full: it can grow, then the write is retried
    kNoSpace,          // the disk is full: nothing of the write was stored
  };

  Status() = default;
  static Status ok() { return Status(); }
  static Status invalid_argument(std::string msg) { return {Code::kInvalidArgument, std::move(msg)}; }
  static Status corruption(std::string msg) { return {Code::kCorruption, std::move(msg)}; }
  static Status not_found(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status io_error(std::string msg) { return {Code::kIOError, std::move(msg)}; }
  static Status busy(std::string msg) { return {Code::kBusy, std::move(msg)}; }
  static Status refused(std::string msg) { return {Code::kRefused, std::move(msg)}; }
  static Status store_full(std::string msg) { return {Code::kStoreFull, std::move(msg)}; }
  static Status no_space(std::string msg) { return {Code::kNoSpace, std::move(msg)}; }

  bool is_ok() const { return code_ == Code::kOk; }
  explicit operator bool() const { return is_ok(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is prefixed with `context: `.
  Status with_context(const std::string& context) const {
    if (is_ok() || context.empty()) return *this;
    return {code_, context + ": " + message_};
  }

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// Result<T> holds a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {          // NOLINT: implicit by design
    assert(!std::get<Status>(v_).is_ok());
  }

  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }

  // REQUIRES: is_ok()
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // OK when a value is held.
  Status status() const { return is_ok() ? Status::ok() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace replog

// Propagates a non-OK Status from an expression yielding Status.
#define REPLOG_RETURN_IF_ERROR(expr)           \
  do {                                         \
    ::replog::Status _st = (expr);             \
    if (!_st.is_ok()) return _st;              \
  } while (0)
