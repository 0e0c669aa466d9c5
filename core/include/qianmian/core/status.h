// Module core: the foundation: Status, domain types, CSV, time, configuration, dataset loading. May
// depend on: the standard library; toml++ and date (private).
// Status and Result<T>: how every public qianmian function reports failure.
// A user error (bad input, missing file) is a Status; a broken invariant is QM_CHECK (aborts).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace qm {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // bad input from a caller or a file
  kNotFound,         // a named thing does not exist
  kAlreadyExists,
  kFailedPrecondition,  // the system is not in a state to do this
  kIoError,             // the OS said no
  kCorruption,          // stored data failed verification
  kUnavailable,         // a dependency (store, server) cannot be reached
  kResourceExhausted,   // over capacity
  kDeadlineExceeded,
  kConflict,          // a concurrent change won (compare-and-set lost); read again and retry
  kPermissionDenied,  // the caller may not do this (e.g. approving their own campaign)
  kInternal,
};

// Name of a code, e.g. "invalid_argument".
const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
  static Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
  static Status DeadlineExceeded(std::string m) { return {StatusCode::kDeadlineExceeded, std::move(m)}; }
  static Status Conflict(std::string m) { return {StatusCode::kConflict, std::move(m)}; }
  static Status PermissionDenied(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid_argument: <message>", or "ok".
  std::string ToString() const;
  // A copy with "<prefix>: " in front of the message.
  Status Annotate(const std::string& prefix) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(v_).ok()) v_ = Status::Internal("Result built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  // REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

[[noreturn]] void CheckFailed(const char* file, int line, const char* expr, const std::string& msg);

}  // namespace qm

// Aborts with file and line when a program invariant is broken (never for bad input).
#define QM_CHECK(cond)                                             \
  do {                                                             \
    if (!(cond)) ::qm::CheckFailed(__FILE__, __LINE__, #cond, ""); \
  } while (0)
#define QM_CHECK_MSG(cond, msg)                                       \
  do {                                                                \
    if (!(cond)) ::qm::CheckFailed(__FILE__, __LINE__, #cond, (msg)); \
  } while (0)

#define QM_CONCAT_INNER_(a, b) a##b
#define QM_CONCAT_(a, b) QM_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function if `expr` is not OK.
#define QM_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::qm::Status qm_status_ = (expr);        \
    if (!qm_status_.ok()) return qm_status_; \
  } while (0)

// `lhs = value of expr` or return its Status.
#define QM_ASSIGN_OR_RETURN(lhs, expr) QM_ASSIGN_OR_RETURN_IMPL_(QM_CONCAT_(qm_result_, __LINE__), lhs, expr)
#define QM_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
