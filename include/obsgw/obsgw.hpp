#pragma once
/// @file
/// Everything an embedding program needs.

#include "obsgw/config.hpp"
#include "obsgw/downstream.hpp"
#include "obsgw/exchange.hpp"
#include "obsgw/forwarder.hpp"
#include "obsgw/gateway.hpp"
#include "obsgw/header_transform.hpp"
#include "obsgw/headers.hpp"
#include "obsgw/http_message.hpp"
#include "obsgw/logger.hpp"
#include "obsgw/policy.hpp"
#include "obsgw/router.hpp"
#include "obsgw/server.hpp"
#include "obsgw/server_options.hpp"
#include "obsgw/verdict.hpp"
