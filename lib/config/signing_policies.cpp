#include "config/signing_policies.hpp"

#include <fmt/format.h>

#include "config/secrets.hpp"
#include "obsgw/signing_policies.hpp"

namespace obsgw::config {

namespace {

constexpr std::int64_t kMaxBody = 1LL << 30;

std::shared_ptr<const SigningKey> read_key(const ConfigNode& n, ConfigProblems& p) {
  std::string id = n.get_string("key_id", "", p);
  if (id.empty()) p.add(n.path() + ".key_id", "required");
  if (!n.find("secret_file") && !n.find("secret_env")) {
    p.add(n.path(), "give secret_file or secret_env (secrets are never written into the config)");
    return nullptr;
  }
  std::string secret = read_secret_value(n, "secret_file", "secret_env", p);
  if (id.empty() || secret.empty()) return nullptr;
  try {
    return std::make_shared<const SigningKey>(std::move(id), std::move(secret));
  } catch (const std::invalid_argument& e) {
    p.add(n.path() + (n.find("secret_file") ? ".secret_file" : ".secret_env"), e.what());
    return nullptr;
  }
}

}  // namespace

std::shared_ptr<const Policy> make_sign_policy(const ConfigNode& node, ConfigProblems& p) {
  if (!node.expect_object({"type", "key_id", "secret_file", "secret_env", "headers", "max_body_bytes"}, p)) return nullptr;
  std::size_t before = p.list().size();
  RequestSignerOptions o;
  o.key = read_key(node, p);
  o.headers = node.get_string_list("headers", p);
  o.max_body_bytes = static_cast<std::size_t>(node.get_int("max_body_bytes", static_cast<std::int64_t>(o.max_body_bytes), 1, kMaxBody, p));
  if (p.list().size() != before || !o.key) return nullptr;
  try {
    return make_request_signer(std::move(o));
  } catch (const std::invalid_argument& e) {
    p.add(node.path() + ".headers", e.what());
    return nullptr;
  }
}

std::shared_ptr<const Policy> make_hmac_policy(const ConfigNode& node, ConfigProblems& p) {
  if (!node.expect_object({"type", "clients", "window_s", "reject_replays", "max_body_bytes"}, p)) return nullptr;
  std::size_t before = p.list().size();
  HmacAuthenticatorOptions o;
  auto clients = node.find("clients");
  if (!clients || !clients->is_array() || clients->elements().empty()) {
    p.add(node.path() + ".clients", "required: a non-empty array of {key_id, secret_file|secret_env, subject, tenants}");
    return nullptr;
  }
  for (const auto& c : clients->elements()) {
    if (!c.expect_object({"key_id", "secret_file", "secret_env", "subject", "tenants", "scopes", "groups"}, p)) continue;
    SignedClient sc;
    sc.key = read_key(c, p);
    sc.subject = c.get_string("subject", "", p);
    sc.tenants = c.get_string_list("tenants", p);
    sc.scopes = c.get_string_list("scopes", p);
    sc.groups = c.get_string_list("groups", p);
    o.clients.push_back(std::move(sc));
  }
  o.window = std::chrono::seconds(node.get_int("window_s", 300, 1, 3600, p));
  o.reject_replays = node.get_bool("reject_replays", true, p);
  o.max_body_bytes = static_cast<std::size_t>(node.get_int("max_body_bytes", static_cast<std::int64_t>(o.max_body_bytes), 1, kMaxBody, p));
  if (p.list().size() != before) return nullptr;
  try {
    return make_hmac_authenticator(std::move(o));
  } catch (const std::invalid_argument& e) {
    p.add(node.path() + ".clients", e.what());
    return nullptr;
  }
}

}  // namespace obsgw::config
