#include "api/router.h"

#include "api/errors.h"

namespace continuum {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> segments;
  size_t start = 0;
  while (start < path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    if (slash > start) segments.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return segments;
}

void Router::add(std::string method, const std::string& pattern, RouteHandler handler) {
  routes_.push_back(Route{std::move(method), split_path(pattern), std::move(handler)});
}

void Router::dispatch(HttpRequest& request, std::shared_ptr<ResponseWriter> writer) const {
  std::vector<std::string> segments = split_path(request.path);
  bool path_matched = false;
  for (const auto& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    PathParams params;
    bool match = true;
    for (size_t i = 0; i < segments.size() && match; ++i) {
      const std::string& expected = route.segments[i];
      if (expected.size() > 2 && expected.front() == '{' && expected.back() == '}') {
        params[expected.substr(1, expected.size() - 2)] = segments[i];
      } else {
        match = expected == segments[i];
      }
    }
    if (!match) continue;
    path_matched = true;
    if (route.method != request.method) continue;
    route.handler(request, params, std::move(writer));
    return;
  }
  if (path_matched) {
    HttpResponse response = error_response(
        Status(Code::kInvalidArgument, "method " + request.method + " not allowed on " + request.path));
    response.status = 405;
    writer->send(std::move(response));
    return;
  }
  writer->send(error_response(not_found("no route for " + request.method + " " + request.path)));
}

}  // namespace continuum
