// eccl's one exception type. Every failure that crosses a public API is an eccl::Error whose
// message names what went wrong (key, rank, peer, address, size) and whose code lets callers
// branch without parsing text.
#pragma once

#include <stdexcept>
#include <string>

namespace eccl {

enum class ErrorCode {
  kInvalidArgument,   // the caller passed something unusable (message names the argument)
  kTimeout,           // a deadline passed (message names what was awaited)
  kConnectionClosed,  // the peer or server went away
  kConnectFailed,     // could not connect within the deadline
  kProtocol,          // the other side sent something that is not our protocol
  kAuth,              // shared-secret authentication failed or is missing
  kSystem,            // an OS call failed (message carries errno text)
  kAborted,           // the operation was aborted locally
  kRemote,            // the other side reported an error
};

const char* errorCodeName(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message);
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

// Throws kSystem with "<what>: <strerror(err)>".
[[noreturn]] void throwSystemError(const std::string& what, int err);

}  // namespace eccl
