// Precompiled header: the heavy, stable third-party headers. Our own headers
// stay out so that editing them does not rebuild the PCH.
#pragma once
#include <boost/json.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
