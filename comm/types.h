// Element types and reduction operators of the collectives (the C API's enums mirror these).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace eccl {

// Values are the C API's ecclDataType_t. The fp8 pair (OCP E4M3 and E5M2) moves and gathers but
// does not reduce: reductions in 8-bit floats lose too much to be what a caller meant.
enum class DataType : int {
  kInt8 = 0, kInt32, kInt64, kFloat16, kBFloat16, kFloat32, kFloat64,
  kUInt8, kInt16, kBool, kFloat8E4M3, kFloat8E5M2,
};
inline constexpr int kDataTypeCount = 12;
enum class ReduceOp : int { kSum = 0, kProd, kMin, kMax };

size_t dataTypeSize(DataType t);  // bytes per element; throws Error(kInvalidArgument) for a bad value
const char* dataTypeName(DataType t);
const char* reduceOpName(ReduceOp op);

// False for the types reduceInto refuses (the fp8 pair).
bool reducible(DataType t);
// Throws Error(kInvalidArgument) naming `what`, the type and the op when the pair cannot reduce.
void requireReducible(DataType t, ReduceOp op, const std::string& what);

// acc[i] = acc[i] (op) in[i] for i < count. Bool: sum and max are "or", prod and min "and". fp16/bf16 are reduced in fp32 and rounded back
// (round to nearest even). Throws Error(kInvalidArgument) for a bad type or op.
void reduceInto(void* acc, const void* in, size_t count, DataType type, ReduceOp op);

// IEEE half / bfloat16 conversions (exposed for tests and references).
float halfToFloat(uint16_t h);
uint16_t floatToHalf(float f);
float bf16ToFloat(uint16_t b);
uint16_t floatToBf16(float f);

}  // namespace eccl
