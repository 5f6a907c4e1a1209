#include "comm/types.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "base/error.h"

namespace eccl {

size_t dataTypeSize(DataType t) {
  switch (t) {
    case DataType::kInt8: return 1;
    case DataType::kInt32: return 4;
    case DataType::kInt64: return 8;
    case DataType::kFloat16: return 2;
    case DataType::kBFloat16: return 2;
    case DataType::kFloat32: return 4;
    case DataType::kFloat64: return 8;
    case DataType::kUInt8: return 1;
    case DataType::kInt16: return 2;
    case DataType::kBool: return 1;
    case DataType::kFloat8E4M3: return 1;
    case DataType::kFloat8E5M2: return 1;
  }
  throw Error(ErrorCode::kInvalidArgument, "unknown data type " + std::to_string(static_cast<int>(t)));
}

const char* dataTypeName(DataType t) {
  static const char* const names[kDataTypeCount] = {"int8",  "int32", "int64", "float16",      "bfloat16",    "float32",
                                                     "float64", "uint8", "int16", "bool", "float8_e4m3", "float8_e5m2"};
  int i = static_cast<int>(t);
  return i >= 0 && i < kDataTypeCount ? names[i] : "?";
}

const char* reduceOpName(ReduceOp op) {
  static const char* const names[] = {"sum", "prod", "min", "max"};
  int i = static_cast<int>(op);
  return i >= 0 && i < 4 ? names[i] : "?";
}

float halfToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while (!(mant & 0x400));
      bits = sign | uint32_t(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 112) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t floatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exp = int32_t((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffff;
  if (((x >> 23) & 0xff) == 0xff) return uint16_t(sign | 0x7c00 | (mant ? 0x200 : 0));  // inf / nan
  if (exp >= 31) return uint16_t(sign | 0x7c00);                                         // overflow
  if (exp <= 0) {                                                                        // subnormal or zero
    if (exp < -10) return uint16_t(sign);
    mant |= 0x800000;
    uint32_t shift = uint32_t(14 - exp);
    uint32_t half = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) ++half;
    return uint16_t(sign | half);
  }
  uint32_t half = sign | uint32_t(exp) << 10 | mant >> 13, rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) ++half;  // may carry into the exponent: correct
  return uint16_t(half);
}

float bf16ToFloat(uint16_t b) {
  uint32_t bits = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t floatToBf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7f800000) == 0x7f800000 && (x & 0x7fffff)) return uint16_t((x >> 16) | 0x40);  // keep NaN a NaN
  x += 0x7fff + ((x >> 16) & 1);
  return uint16_t(x >> 16);
}

namespace {

template <class T>
T apply(T a, T b, ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return a + b;
    case ReduceOp::kProd: return a * b;
    case ReduceOp::kMin: return std::min(a, b);
    case ReduceOp::kMax: return std::max(a, b);
  }
  return a;
}

template <class T>
void reduceTyped(void* acc, const void* in, size_t n, ReduceOp op) {
  T* a = static_cast<T*>(acc);
  const T* b = static_cast<const T*>(in);
  switch (op) {  // hoist the switch so the loops vectorise
    case ReduceOp::kSum: for (size_t i = 0; i < n; ++i) a[i] = T(a[i] + b[i]); break;
    case ReduceOp::kProd: for (size_t i = 0; i < n; ++i) a[i] = T(a[i] * b[i]); break;
    case ReduceOp::kMin: for (size_t i = 0; i < n; ++i) a[i] = std::min(a[i], b[i]); break;
    case ReduceOp::kMax: for (size_t i = 0; i < n; ++i) a[i] = std::max(a[i], b[i]); break;
  }
}

// Bytes are 0 or 1 (torch's bool); the result is normalised to 0/1.
void reduceBool(void* acc, const void* in, size_t n, ReduceOp op) {
  uint8_t* a = static_cast<uint8_t*>(acc);
  const uint8_t* b = static_cast<const uint8_t*>(in);
  const bool any = op == ReduceOp::kSum || op == ReduceOp::kMax;
  for (size_t i = 0; i < n; ++i) a[i] = any ? uint8_t(a[i] != 0 || b[i] != 0) : uint8_t(a[i] != 0 && b[i] != 0);
}

template <float (*ToF)(uint16_t), uint16_t (*FromF)(float)>
void reduce16(void* acc, const void* in, size_t n, ReduceOp op) {
  uint16_t* a = static_cast<uint16_t*>(acc);
  const uint16_t* b = static_cast<const uint16_t*>(in);
  for (size_t i = 0; i < n; ++i) a[i] = FromF(apply(ToF(a[i]), ToF(b[i]), op));
}

}  // namespace

bool reducible(DataType t) { return t != DataType::kFloat8E4M3 && t != DataType::kFloat8E5M2; }

void requireReducible(DataType t, ReduceOp op, const std::string& what) {
  dataTypeSize(t);  // a known type
  if (static_cast<int>(op) < 0 || static_cast<int>(op) > 3)
    throw Error(ErrorCode::kInvalidArgument, what + ": unknown reduce op " + std::to_string(static_cast<int>(op)));
  if (!reducible(t))
    throw Error(ErrorCode::kInvalidArgument, what + ": " + dataTypeName(t) + " cannot be reduced (" + reduceOpName(op) +
                                                 "); fp8 types only move and gather — reduce in a wider type");
}

void reduceInto(void* acc, const void* in, size_t count, DataType type, ReduceOp op) {
  requireReducible(type, op, "reduce");
  switch (type) {
    case DataType::kUInt8: return reduceTyped<uint8_t>(acc, in, count, op);
    case DataType::kInt16: return reduceTyped<int16_t>(acc, in, count, op);
    case DataType::kBool: return reduceBool(acc, in, count, op);
    case DataType::kFloat8E4M3:
    case DataType::kFloat8E5M2: break;
    case DataType::kInt8: return reduceTyped<int8_t>(acc, in, count, op);
    case DataType::kInt32: return reduceTyped<int32_t>(acc, in, count, op);
    case DataType::kInt64: return reduceTyped<int64_t>(acc, in, count, op);
    case DataType::kFloat32: return reduceTyped<float>(acc, in, count, op);
    case DataType::kFloat64: return reduceTyped<double>(acc, in, count, op);
    case DataType::kFloat16: return reduce16<halfToFloat, floatToHalf>(acc, in, count, op);
    case DataType::kBFloat16: return reduce16<bf16ToFloat, floatToBf16>(acc, in, count, op);
  }
  throw Error(ErrorCode::kInvalidArgument, "unknown data type " + std::to_string(static_cast<int>(type)));
}

}  // namespace eccl
