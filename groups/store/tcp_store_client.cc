#include "groups/store/tcp_store_client.h"

#include <functional>

#include "groups/store/store_auth.h"
#include "base/env.h"
#include "base/error.h"
#include "base/logging.h"
#include "transport/socket/socket.h"

namespace eccl {

using store::Command;
using store::FrameWriter;
using store::Status;

namespace {

constexpr Millis kDefaultTimeout = std::chrono::seconds(300);
// The server answers a wait itself when it times out; the client gives it this much longer
// before deciding the server is unresponsive.
constexpr Millis kServerGrace = std::chrono::seconds(5);
constexpr size_t kFirstRead = 4096;
constexpr std::chrono::microseconds kDefaultSpin{50};

std::string joinKeys(const std::vector<std::string>& keys) {
  std::string out;
  for (size_t i = 0; i < keys.size() && i < 8; ++i) out += (i ? ", '" : "'") + keys[i] + "'";
  if (keys.size() > 8) out += ", ... (" + std::to_string(keys.size()) + " keys)";
  return out;
}

}  // namespace

TcpStoreClient::TcpStoreClient(const std::string& address, TcpStoreClientOptions options)
    : TcpStoreClient(SocketAddress::parse(address), std::move(options)) {}

TcpStoreClient::TcpStoreClient(const SocketAddress& address, TcpStoreClientOptions options)
    : address_(address),
      timeout_(options.timeout.value_or(envSeconds("ECCL_STORE_TIMEOUT", kDefaultTimeout))),
      token_(store::resolveToken(options.token)),
      limits_(options.limits),
      spin_(options.spin.value_or(std::chrono::microseconds(envInt("ECCL_STORE_SPIN_US", kDefaultSpin.count())))) {}

void TcpStoreClient::connect() {
  Fd fd = openConnection(Deadline::after(timeout_));
  std::lock_guard lock(mu_);
  idle_.push_back(std::move(fd));
}

Fd TcpStoreClient::openConnection(Deadline deadline) {
  Fd fd = connectTcp(address_, deadline);
  try {
    Reply hello = readFrame(fd.get(), deadline, "the store's greeting");
    if (hello.status != Status::kHello || hello.fields.size() != 3)
      throw Error(ErrorCode::kProtocol, "store at " + address_.str() + " sent no greeting: is it an eccl store?");
    bool authRequired = store::decodeU64(hello.fields[1], "auth flag") != 0;
    if (authRequired) {
      if (!token_)
        throw Error(ErrorCode::kAuth, "store at " + address_.str() +
                                          " requires a token: set ECCL_STORE_TOKEN or ECCL_STORE_TOKEN_FILE");
      if (hello.fields[2].size() != store::kNonceBytes)
        throw Error(ErrorCode::kProtocol, "store at " + address_.str() + " sent a malformed challenge");
      store::Nonce nonce;
      std::copy(hello.fields[2].begin(), hello.fields[2].end(), nonce.begin());
      std::vector<uint8_t> auth;
      FrameWriter(auth, uint8_t(Command::kAuth)).field(store::computeMac(*token_, nonce)).finish();
      sendAll(fd.get(), auth.data(), auth.size(), deadline, "store at " + address_.str());
      Reply r = readFrame(fd.get(), deadline, "authentication");
      if (r.status != Status::kOk) throw Error(ErrorCode::kAuth, "store at " + address_.str() + " rejected the token");
    }
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kConnectionClosed && token_)
      throw Error(ErrorCode::kAuth, "store at " + address_.str() + " closed the connection during authentication (wrong token?)");
    throw;
  }
  return fd;
}

TcpStoreClient::Reply TcpStoreClient::readFrame(int fd, Deadline deadline, const std::string& what) {
  // One request is outstanding per connection, so whatever arrives belongs to this reply; a
  // reply usually arrives whole and one recv takes it.
  const std::string peer = "store at " + address_.str();
  Reply r;
  r.body.resize(kFirstRead);
  size_t have = 0;
  while (have < store::kHeaderBytes)
    have += recvSome(fd, r.body.data() + have, r.body.size() - have, deadline, peer, spin_);
  store::FrameHeader h;
  if (auto bad = store::decodeHeader(r.body.data(), limits_.maxBodyBytes(), h))
    throw Error(ErrorCode::kProtocol, peer + " sent a bad reply to " + what + ": " + *bad);
  const size_t total = store::kHeaderBytes + h.bodyBytes;
  if (have > total) throw Error(ErrorCode::kProtocol, peer + " sent more than one reply to " + what);
  if (r.body.size() < total) r.body.resize(total);
  if (have < total) recvAll(fd, r.body.data() + have, total - have, deadline, peer);
  r.body.erase(r.body.begin(), r.body.begin() + store::kHeaderBytes);
  r.body.resize(h.bodyBytes);
  r.status = static_cast<Status>(h.code);
  r.fields = store::FieldReader(r.body).rest();
  return r;
}

TcpStoreClient::Reply TcpStoreClient::roundTrip(const std::vector<uint8_t>& request, const std::string& what,
                                                Deadline deadline) {
  Fd fd;
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      fd = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  try {
    if (!fd) fd = openConnection(deadline);
    sendAll(fd.get(), request.data(), request.size(), deadline, "store at " + address_.str());
    Reply r = readFrame(fd.get(), deadline, what);
    std::lock_guard lock(mu_);
    idle_.push_back(std::move(fd));
    return r;
  } catch (const Error& e) {
    // The connection's state is unknown now (a reply may still arrive): it is closed, not reused.
    if (e.code() == ErrorCode::kTimeout)
      throw Error(ErrorCode::kTimeout, what + " on store " + address_.str() + ": no reply in time (" + e.what() + ")");
    throw Error(e.code(), what + " on store " + address_.str() + " failed: " + e.what());
  }
}

void TcpStoreClient::fail(const Reply& r, const std::string& what) {
  if (r.status == Status::kTimeout) {
    std::vector<std::string> missing;
    for (auto& f : r.fields) missing.emplace_back(store::asText(f));
    throw Error(ErrorCode::kTimeout,
                what + " timed out on store " + address_.str() + "; still missing: " + joinKeys(missing));
  }
  if (r.status == Status::kError && !r.fields.empty())
    throw Error(ErrorCode::kRemote, what + " rejected by store " + address_.str() + ": " +
                                        std::string(store::asText(r.fields[0])));
  throw Error(ErrorCode::kProtocol, what + ": unexpected reply status " + std::to_string(int(r.status)) +
                                        " from store " + address_.str());
}

void TcpStoreClient::checkKey(const std::string& key) const {
  if (key.size() > limits_.maxKeyBytes)
    throw Error(ErrorCode::kInvalidArgument, "store key '" + key.substr(0, 64) + "...' is " + std::to_string(key.size()) +
                                                 " bytes; the limit is " + std::to_string(limits_.maxKeyBytes));
}

void TcpStoreClient::checkValue(const std::string& key, size_t bytes) const {
  if (bytes > limits_.maxValueBytes)
    throw Error(ErrorCode::kInvalidArgument, "value for store key '" + key + "' is " + std::to_string(bytes) +
                                                 " bytes; the limit is " + std::to_string(limits_.maxValueBytes));
}

TcpStoreClient::Reply TcpStoreClient::call(Command command, const std::string& what, Deadline deadline,
                                           const std::function<void(FrameWriter&)>& build, size_t expectFields) {
  std::vector<uint8_t> request;
  FrameWriter w(request, uint8_t(command));
  build(w);
  w.finish();
  if (request.size() - store::kHeaderBytes > limits_.maxBodyBytes())
    throw Error(ErrorCode::kInvalidArgument, what + " needs a " + std::to_string(request.size()) +
                                                 "-byte frame; the limit is " + std::to_string(limits_.maxBodyBytes()));
  Reply r = roundTrip(request, what, deadline);
  if (r.status != Status::kOk) fail(r, what);
  if (r.fields.size() != expectFields)
    throw Error(ErrorCode::kProtocol, what + ": store " + address_.str() + " sent " + std::to_string(r.fields.size()) +
                                          " reply fields, expected " + std::to_string(expectFields));
  return r;
}

void TcpStoreClient::ping() {
  call(Command::kPing, "PING", Deadline::after(timeout_), [](FrameWriter&) {}, 0);
}

void TcpStoreClient::set(const std::string& key, ByteView value) {
  checkKey(key);
  checkValue(key, value.size());
  call(Command::kSet, "SET '" + key + "'", Deadline::after(timeout_),
       [&](FrameWriter& w) { w.field(key).field(value); }, 0);
}

void TcpStoreClient::append(const std::string& key, ByteView value) {
  checkKey(key);
  checkValue(key, value.size());
  call(Command::kAppend, "APPEND '" + key + "'", Deadline::after(timeout_),
       [&](FrameWriter& w) { w.field(key).field(value); }, 0);
}

Bytes TcpStoreClient::get(const std::string& key, StoreTimeout timeout) {
  checkKey(key);
  Millis t = resolve(timeout);
  Reply r = call(Command::kGet, "GET '" + key + "'", Deadline::after(t + kServerGrace),
                 [&](FrameWriter& w) { w.u64(static_cast<uint64_t>(t.count())).field(key); }, 1);
  return Bytes(r.fields[0].begin(), r.fields[0].end());
}

std::vector<Bytes> TcpStoreClient::multiGet(const std::vector<std::string>& keys, StoreTimeout timeout) {
  for (auto& k : keys) checkKey(k);
  if (keys.empty()) return {};
  Millis t = resolve(timeout);
  Reply r = call(Command::kMultiGet, "MULTI_GET " + joinKeys(keys), Deadline::after(t + kServerGrace),
                 [&](FrameWriter& w) {
                   w.u64(static_cast<uint64_t>(t.count()));
                   for (auto& k : keys) w.field(k);
                 }, keys.size());
  std::vector<Bytes> out;
  out.reserve(keys.size());
  for (auto& f : r.fields) out.emplace_back(f.begin(), f.end());
  return out;
}

void TcpStoreClient::wait(const std::vector<std::string>& keys, StoreTimeout timeout) {
  for (auto& k : keys) checkKey(k);
  if (keys.empty()) return;
  Millis t = resolve(timeout);
  call(Command::kWait, "WAIT " + joinKeys(keys), Deadline::after(t + kServerGrace), [&](FrameWriter& w) {
    w.u64(static_cast<uint64_t>(t.count()));
    for (auto& k : keys) w.field(k);
  }, 0);
}

std::optional<Bytes> TcpStoreClient::tryGet(const std::string& key) {
  checkKey(key);
  std::string what = "TRY_GET '" + key + "'";
  std::vector<uint8_t> request;
  FrameWriter(request, uint8_t(Command::kTryGet)).field(key).finish();
  Reply r = roundTrip(request, what, Deadline::after(timeout_));
  if (r.status == Status::kNotFound) return std::nullopt;
  if (r.status != Status::kOk || r.fields.size() != 1) fail(r, what);
  return Bytes(r.fields[0].begin(), r.fields[0].end());
}

bool TcpStoreClient::check(const std::vector<std::string>& keys) {
  for (auto& k : keys) checkKey(k);
  Reply r = call(Command::kCheck, "CHECK " + joinKeys(keys), Deadline::after(timeout_), [&](FrameWriter& w) {
    for (auto& k : keys) w.field(k);
  }, 1);
  return store::decodeU64(r.fields[0], "CHECK result") != 0;
}

int64_t TcpStoreClient::add(const std::string& key, int64_t delta) {
  checkKey(key);
  Reply r = call(Command::kAdd, "ADD '" + key + "'", Deadline::after(timeout_),
                 [&](FrameWriter& w) { w.field(key).u64(static_cast<uint64_t>(delta)); }, 1);
  return static_cast<int64_t>(store::decodeU64(r.fields[0], "ADD result"));
}

CompareSetResult TcpStoreClient::compareSet(const std::string& key, ByteView expected, ByteView desired) {
  checkKey(key);
  checkValue(key, desired.size());
  Reply r = call(Command::kCompareSet, "COMPARE_SET '" + key + "'", Deadline::after(timeout_),
                 [&](FrameWriter& w) { w.field(key).field(expected).field(desired); }, 2);
  return {store::decodeU64(r.fields[0], "COMPARE_SET flag") != 0, Bytes(r.fields[1].begin(), r.fields[1].end())};
}

bool TcpStoreClient::deleteKey(const std::string& key) {
  checkKey(key);
  Reply r = call(Command::kDelete, "DELETE '" + key + "'", Deadline::after(timeout_),
                 [&](FrameWriter& w) { w.field(key); }, 1);
  return store::decodeU64(r.fields[0], "DELETE result") != 0;
}

void TcpStoreClient::multiSet(const std::vector<std::string>& keys, const std::vector<Bytes>& values) {
  if (keys.size() != values.size())
    throw Error(ErrorCode::kInvalidArgument, "MULTI_SET got " + std::to_string(keys.size()) + " keys but " +
                                                 std::to_string(values.size()) + " values");
  for (size_t i = 0; i < keys.size(); ++i) {
    checkKey(keys[i]);
    checkValue(keys[i], values[i].size());
  }
  if (keys.empty()) return;
  call(Command::kMultiSet, "MULTI_SET " + joinKeys(keys), Deadline::after(timeout_), [&](FrameWriter& w) {
    for (size_t i = 0; i < keys.size(); ++i) w.field(keys[i]).field(values[i]);
  }, 0);
}

int64_t TcpStoreClient::numKeys() {
  Reply r = call(Command::kNumKeys, "NUM_KEYS", Deadline::after(timeout_), [](FrameWriter&) {}, 1);
  return static_cast<int64_t>(store::decodeU64(r.fields[0], "NUM_KEYS result"));
}

}  // namespace eccl
