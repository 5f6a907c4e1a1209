#include "base/error.h"

#include <cstring>

namespace eccl {

const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kTimeout: return "timeout";
    case ErrorCode::kConnectionClosed: return "connection closed";
    case ErrorCode::kConnectFailed: return "connect failed";
    case ErrorCode::kProtocol: return "protocol error";
    case ErrorCode::kAuth: return "authentication error";
    case ErrorCode::kSystem: return "system error";
    case ErrorCode::kAborted: return "aborted";
    case ErrorCode::kRemote: return "remote error";
  }
  return "unknown error";
}

Error::Error(ErrorCode code, const std::string& message)
    : std::runtime_error(message), code_(code) {}

void throwSystemError(const std::string& what, int err) {
  throw Error(ErrorCode::kSystem, what + ": " + std::strerror(err));
}

}  // namespace eccl
