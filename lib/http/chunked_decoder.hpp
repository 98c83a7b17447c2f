#pragma once
// Incremental, zero-copy decoder of the chunked transfer coding (RFC 9112 7.1). Chunk extensions are
// validated and dropped; trailer fields are validated and dropped.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/http_error.hpp"

namespace obsgw::http {

class ChunkedDecoder {
 public:
  struct Step {
    std::size_t consumed = 0;   // bytes of input used by this step
    std::string_view data;      // decoded body bytes (a view into the input), possibly empty
    bool done = false;          // the last chunk and trailers have been read
    HttpError error{};          // set when the input is malformed
  };

  // `error_status`: 400 when decoding a client's body, 502 for an upstream's.
  explicit ChunkedDecoder(int error_status = 400) : error_status_(error_status) {}

  // Decodes from `in`. Returns at most one contiguous data span; call again with the unconsumed rest.
  Step decode(std::string_view in);
  bool done() const noexcept { return state_ == State::done; }
  void reset() noexcept { *this = ChunkedDecoder(error_status_); }

 private:
  enum class State : unsigned char { size, ext, size_lf, data, data_cr, data_lf, trailer, trailer_lf, done };
  Step fail(Step s, const char* message) {
    s.error = {error_status_, "bad_chunked_encoding", message};
    return s;
  }
  bool extension_valid() const noexcept;

  static constexpr std::size_t kMaxExtension = 256;
  static constexpr std::size_t kMaxTrailer = 8 * 1024;

  State state_ = State::size;
  int error_status_;
  unsigned size_digits_ = 0;
  std::uint64_t remaining_ = 0;
  char ext_[kMaxExtension];
  std::size_t ext_len_ = 0;
  std::size_t trailer_bytes_ = 0;
  std::size_t trailer_line_len_ = 0;
  bool trailer_line_colon_ = false;
  bool trailer_line_bad_ = false;
};

}  // namespace obsgw::http
