// Base64 (standard alphabet, padded) for sealed values. Not constant-time: it only ever encodes
// and decodes ciphertext, nonces and tags, which are not secret. Decoding uses AVX2 when the CPU
// has it (chosen once at run time) and a table-driven scalar loop otherwise; both accept exactly
// the same inputs and produce the same bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace attune::keystore {

// Appends the encoding of `n` bytes at `in` to `out`.
void base64_encode(const unsigned char* in, size_t n, std::string& out);

// The number of bytes `in` decodes to, or npos when its length is not a multiple of 4 or its
// padding is malformed (the characters themselves are checked by base64_decode).
size_t base64_decoded_size(std::string_view in);

// Decodes `in` into `out`, which must have room for base64_decoded_size(in) bytes (nothing past
// them is written). False on a character outside the alphabet or misplaced padding; `out` then
// holds garbage.
bool base64_decode(std::string_view in, unsigned char* out);

// The two implementations, exposed so tests can compare them on the same inputs.
bool base64_decode_scalar(std::string_view in, unsigned char* out);
// False when the CPU has no AVX2 (nothing is decoded then).
bool base64_decode_avx2_available();
bool base64_decode_avx2(std::string_view in, unsigned char* out);

}  // namespace attune::keystore
