// The dashboard's static files (node/http/assets/), built into the binary so
// that it works offline with nothing installed beside it. The build writes
// their bytes into a generated source (cmake/embed_assets.cmake).
//
// Thread safety: constant data.
#pragma once

#include <string_view>

namespace replog::http {

struct Asset {
  std::string_view path;  // "/index.html"
  std::string_view content_type;
  std::string_view bytes;
};

// The file served at `path`; null when there is none.
const Asset* find_asset(std::string_view path);

}  // namespace replog::http
