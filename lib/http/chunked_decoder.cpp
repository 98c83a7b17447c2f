#include "http/chunked_decoder.hpp"

#include <algorithm>

#include "http/char_classes.hpp"

namespace obsgw::http {

// chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ), ext-val = token / quoted-string
bool ChunkedDecoder::extension_valid() const noexcept {
  std::string_view s(ext_, ext_len_);
  auto skip_ws = [&] {
    while (!s.empty() && (s[0] == ' ' || s[0] == '\t')) s.remove_prefix(1);
  };
  auto take_token = [&] {
    std::size_t n = 0;
    while (n < s.size() && is_token_char(s[n])) ++n;
    s.remove_prefix(n);
    return n > 0;
  };
  skip_ws();
  while (!s.empty()) {
    if (s[0] != ';') return false;
    s.remove_prefix(1);
    skip_ws();
    if (!take_token()) return false;
    skip_ws();
    if (!s.empty() && s[0] == '=') {
      s.remove_prefix(1);
      skip_ws();
      if (!s.empty() && s[0] == '"') {
        s.remove_prefix(1);
        bool closed = false;
        while (!s.empty()) {
          char c = s[0];
          s.remove_prefix(1);
          if (c == '"') {
            closed = true;
            break;
          }
          if (c == '\\') {
            if (s.empty() || !is_field_value_char(s[0])) return false;
            s.remove_prefix(1);
          } else if (!is_field_value_char(c)) {
            return false;
          }
        }
        if (!closed) return false;
      } else if (!take_token()) {
        return false;
      }
      skip_ws();
    }
  }
  return true;
}

ChunkedDecoder::Step ChunkedDecoder::decode(std::string_view in) {
  Step step;
  std::size_t i = 0;
  while (i < in.size()) {
    char c = in[i];
    switch (state_) {
      case State::size: {
        int h = hex_value(c);
        if (h >= 0) {
          if (++size_digits_ > 15) return fail(step, "chunk size too large");
          remaining_ = (remaining_ << 4) | static_cast<unsigned>(h);
          ++i;
          break;
        }
        if (size_digits_ == 0) return fail(step, "invalid chunk size");
        if (c == '\r') {
          state_ = State::size_lf;
          ++i;
        } else if (c == ';' || c == ' ' || c == '\t') {
          state_ = State::ext;
          ext_len_ = 0;
        } else {
          return fail(step, "invalid chunk size");
        }
        break;
      }
      case State::ext:
        if (c == '\r') {
          if (!extension_valid()) return fail(step, "invalid chunk extension");
          state_ = State::size_lf;
        } else if (c == '\n') {
          return fail(step, "bare LF in chunk header");
        } else {
          if (ext_len_ == kMaxExtension) return fail(step, "chunk extension too long");
          ext_[ext_len_++] = c;
        }
        ++i;
        break;
      case State::size_lf:
        if (c != '\n') return fail(step, "bare CR in chunk header");
        ++i;
        size_digits_ = 0;
        if (remaining_ == 0) {
          state_ = State::trailer;
          trailer_line_len_ = 0;
          trailer_line_colon_ = trailer_line_bad_ = false;
        } else {
          state_ = State::data;
        }
        break;
      case State::data: {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size() - i));
        step.data = in.substr(i, n);
        remaining_ -= n;
        i += n;
        if (remaining_ == 0) state_ = State::data_cr;
        step.consumed = i;
        return step;  // one span per call keeps the view simple for the caller
      }
      case State::data_cr:
        if (c != '\r') return fail(step, "chunk data not followed by CRLF");
        state_ = State::data_lf;
        ++i;
        break;
      case State::data_lf:
        if (c != '\n') return fail(step, "chunk data not followed by CRLF");
        state_ = State::size;
        remaining_ = 0;
        ++i;
        break;
      case State::trailer:
        if (c == '\r') {
          state_ = State::trailer_lf;
        } else if (c == '\n') {
          return fail(step, "bare LF in trailer");
        } else {
          if (++trailer_bytes_ > kMaxTrailer) return fail(step, "trailer section too large");
          if (trailer_line_len_ == 0 && (c == ' ' || c == '\t')) trailer_line_bad_ = true;  // obs-fold
          if (!trailer_line_colon_) {
            if (c == ':') {
              trailer_line_colon_ = true;
              if (trailer_line_len_ == 0) trailer_line_bad_ = true;  // empty name
            }
            else if (!is_token_char(c)) trailer_line_bad_ = true;
          } else if (!is_field_value_char(c)) {
            trailer_line_bad_ = true;
          }
          ++trailer_line_len_;
        }
        ++i;
        break;
      case State::trailer_lf:
        if (c != '\n') return fail(step, "bare CR in trailer");
        ++i;
        if (trailer_line_len_ == 0) {
          state_ = State::done;
          step.consumed = i;
          step.done = true;
          return step;
        }
        if (trailer_line_bad_ || !trailer_line_colon_) return fail(step, "invalid trailer field");
        state_ = State::trailer;
        trailer_line_len_ = 0;
        trailer_line_colon_ = trailer_line_bad_ = false;
        break;
      case State::done:
        step.consumed = i;
        step.done = true;
        return step;
    }
  }
  step.consumed = i;
  step.done = state_ == State::done;
  return step;
}

}  // namespace obsgw::http
