#include "groups/store/store_state.h"

#include <charconv>

#include "base/error.h"

namespace eccl::store {
namespace {

using Fields = std::vector<std::span<const uint8_t>>;

void expectFields(const Fields& f, size_t n, Command c) {
  if (f.size() != n)
    throw Error(ErrorCode::kProtocol, std::string(commandName(uint8_t(c))) + " takes " + std::to_string(n) +
                                          " fields, got " + std::to_string(f.size()));
}

void expectAtLeast(const Fields& f, size_t n, Command c) {
  if (f.size() < n)
    throw Error(ErrorCode::kProtocol, std::string(commandName(uint8_t(c))) + " takes at least " +
                                          std::to_string(n) + " fields, got " + std::to_string(f.size()));
}

void ok(std::vector<uint8_t>& reply) { FrameWriter(reply, uint8_t(Status::kOk)).finish(); }

}  // namespace

std::string StoreState::key(std::span<const uint8_t> f) const {
  if (f.size() > limits_.maxKeyBytes)
    throw Error(ErrorCode::kInvalidArgument, "key of " + std::to_string(f.size()) +
                                                 " bytes exceeds the limit of " + std::to_string(limits_.maxKeyBytes));
  return std::string(asText(f));
}

Bytes StoreState::value(std::span<const uint8_t> f) const {
  if (f.size() > limits_.maxValueBytes)
    throw Error(ErrorCode::kInvalidArgument, "value of " + std::to_string(f.size()) +
                                                 " bytes exceeds the limit of " + std::to_string(limits_.maxValueBytes));
  return Bytes(f.begin(), f.end());
}

std::optional<WaitRequest> StoreState::execute(Command c, std::span<const uint8_t> body,
                                               std::vector<uint8_t>& reply, std::vector<std::string>& changed) {
  Fields f = FieldReader(body).rest();
  switch (c) {
    case Command::kPing:
      expectFields(f, 0, c);
      ok(reply);
      return std::nullopt;
    case Command::kSet:
    case Command::kAppend: {
      expectFields(f, 2, c);
      std::string k = key(f[0]);
      Bytes v = value(f[1]);
      Bytes& slot = data_[k];
      if (c == Command::kSet) {
        slot = std::move(v);
      } else {
        if (slot.size() + v.size() > limits_.maxValueBytes)
          throw Error(ErrorCode::kInvalidArgument, "APPEND would grow key '" + k + "' beyond the value limit of " +
                                                       std::to_string(limits_.maxValueBytes) + " bytes");
        slot.insert(slot.end(), v.begin(), v.end());
      }
      changed.push_back(std::move(k));
      ok(reply);
      return std::nullopt;
    }
    case Command::kGet:
    case Command::kWait:
    case Command::kMultiGet: {
      expectAtLeast(f, 2, c);
      if (c == Command::kGet) expectFields(f, 2, c);
      WaitRequest w{c, {}, decodeU64(f[0], "timeout")};
      for (size_t i = 1; i < f.size(); ++i) w.keys.push_back(key(f[i]));
      if (!allExist(w.keys)) return w;
      replyToWait(w, reply);
      return std::nullopt;
    }
    case Command::kCheck: {
      std::vector<std::string> keys;
      for (auto& k : f) keys.push_back(key(k));
      FrameWriter(reply, uint8_t(Status::kOk)).u64(allExist(keys) ? 1 : 0).finish();
      return std::nullopt;
    }
    case Command::kTryGet: {
      expectFields(f, 1, c);
      auto it = data_.find(asText(f[0]));
      if (it == data_.end()) {
        FrameWriter(reply, uint8_t(Status::kNotFound)).finish();
      } else {
        FrameWriter(reply, uint8_t(Status::kOk)).field(it->second).finish();
      }
      return std::nullopt;
    }
    case Command::kAdd: {
      expectFields(f, 2, c);
      std::string k = key(f[0]);
      auto delta = static_cast<int64_t>(decodeU64(f[1], "delta"));
      Bytes& slot = data_[k];
      int64_t current = 0;
      if (!slot.empty()) {
        auto* b = reinterpret_cast<const char*>(slot.data());
        auto [p, ec] = std::from_chars(b, b + slot.size(), current);
        if (ec != std::errc() || p != b + slot.size())
          throw Error(ErrorCode::kInvalidArgument, "ADD on key '" + k + "': its value is not a decimal integer");
      }
      if (__builtin_add_overflow(current, delta, &current))
        throw Error(ErrorCode::kInvalidArgument, "ADD of " + std::to_string(delta) + " to key '" + k +
                                                     "' would overflow a 64-bit signed counter; the value is unchanged");
      std::string text = std::to_string(current);
      slot.assign(text.begin(), text.end());
      changed.push_back(std::move(k));
      FrameWriter(reply, uint8_t(Status::kOk)).u64(static_cast<uint64_t>(current)).finish();
      return std::nullopt;
    }
    case Command::kCompareSet: {
      expectFields(f, 3, c);
      std::string k = key(f[0]);
      auto it = data_.find(k);
      bool swap = it == data_.end() ? f[1].empty()
                                    : std::equal(it->second.begin(), it->second.end(), f[1].begin(), f[1].end());
      if (swap) {
        data_[k] = value(f[2]);
        changed.push_back(k);
        it = data_.find(k);
      }
      FrameWriter w(reply, uint8_t(Status::kOk));
      w.u64(swap ? 1 : 0);
      w.field(it == data_.end() ? ByteView() : ByteView(it->second));
      w.finish();
      return std::nullopt;
    }
    case Command::kDelete: {
      expectFields(f, 1, c);
      bool existed = data_.erase(std::string(asText(f[0]))) > 0;
      FrameWriter(reply, uint8_t(Status::kOk)).u64(existed ? 1 : 0).finish();
      return std::nullopt;
    }
    case Command::kMultiSet: {
      if (f.size() % 2 != 0) throw Error(ErrorCode::kProtocol, "MULTI_SET takes key/value pairs, got an odd field count");
      std::vector<std::pair<std::string, Bytes>> kv;
      for (size_t i = 0; i < f.size(); i += 2) kv.emplace_back(key(f[i]), value(f[i + 1]));
      for (auto& [k, v] : kv) {  // all validated first: nothing is half-applied
        data_[k] = std::move(v);
        changed.push_back(k);
      }
      ok(reply);
      return std::nullopt;
    }
    case Command::kNumKeys:
      expectFields(f, 0, c);
      FrameWriter(reply, uint8_t(Status::kOk)).u64(data_.size()).finish();
      return std::nullopt;
    case Command::kAuth:
      throw Error(ErrorCode::kProtocol, "AUTH sent when no authentication is pending");
  }
  throw Error(ErrorCode::kProtocol, "unknown command code " + std::to_string(uint8_t(c)));
}

bool StoreState::allExist(const std::vector<std::string>& keys) const {
  for (auto& k : keys)
    if (!data_.contains(k)) return false;
  return true;
}

std::vector<std::string> StoreState::missing(const std::vector<std::string>& keys) const {
  std::vector<std::string> out;
  for (auto& k : keys)
    if (!data_.contains(k)) out.push_back(k);
  return out;
}

void StoreState::replyToWait(const WaitRequest& w, std::vector<uint8_t>& reply) const {
  if (w.command != Command::kWait) {
    // Bound the reply before building it: the same large key named many times must not make
    // the server allocate gigabytes (or wrap the 32-bit frame length).
    uint64_t total = 0;
    for (auto& k : w.keys) total += 4 + data_.find(k)->second.size();
    if (total > limits_.maxBodyBytes()) {
      FrameWriter(reply, uint8_t(Status::kError))
          .field(std::string(commandName(uint8_t(w.command))) + " of " + std::to_string(w.keys.size()) +
                 " keys would reply " + std::to_string(total) + " bytes, over the limit of " +
                 std::to_string(limits_.maxBodyBytes()) + "; ask for fewer keys at once")
          .finish();
      return;
    }
  }
  FrameWriter out(reply, uint8_t(Status::kOk));
  if (w.command != Command::kWait)
    for (auto& k : w.keys) out.field(data_.find(k)->second);
  out.finish();
}

void StoreState::replyTimeout(const WaitRequest& w, std::vector<uint8_t>& reply) const {
  FrameWriter out(reply, uint8_t(Status::kTimeout));
  for (auto& k : missing(w.keys)) out.field(k);
  out.finish();
}

}  // namespace eccl::store
