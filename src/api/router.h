// Route table: method + path pattern ("/v1/runs/{id}/steps") to handler.
// Unknown paths answer 404, known paths with another method 405.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "net/http_server.h"

namespace continuum {

using PathParams = std::map<std::string, std::string>;
using RouteHandler = std::function<void(HttpRequest&, const PathParams&, std::shared_ptr<ResponseWriter>)>;

class Router {
 public:
  void add(std::string method, const std::string& pattern, RouteHandler handler);
  void dispatch(HttpRequest& request, std::shared_ptr<ResponseWriter> writer) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{name}" segments capture
    RouteHandler handler;
  };
  std::vector<Route> routes_;
};

std::vector<std::string> split_path(const std::string& path);

}  // namespace continuum
