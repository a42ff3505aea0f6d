#include "api/cli/client/params.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

#include "api/cli/client/errors.h"

namespace attune::cli::client {
namespace {

nlohmann::json scalar_to_json(const std::string& s, bool quoted) {
  if (quoted) return s;
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  const auto j = nlohmann::json::parse(s, nullptr, false);
  if (!j.is_discarded() && j.is_number()) return j;
  return s;
}

nlohmann::json node_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return scalar_to_json(node.Scalar(), node.Tag() == "!");
    case YAML::NodeType::Sequence: {
      auto arr = nlohmann::json::array();
      for (const auto& item : node) arr.push_back(node_to_json(item));
      return arr;
    }
    case YAML::NodeType::Map: {
      auto obj = nlohmann::json::object();
      for (const auto& kv : node) obj[kv.first.as<std::string>()] = node_to_json(kv.second);
      return obj;
    }
  }
  return nullptr;
}

// JSON first (exact), then YAML (flow collections like {a: 1}, yes/no are not booleans in 1.2).
std::optional<nlohmann::json> parse_value(const std::string& raw) {
  auto j = nlohmann::json::parse(raw, nullptr, false);
  if (!j.is_discarded()) return j;
  std::string err;
  return yaml_to_json(raw, &err);
}

bool fits(const nlohmann::json& v, const std::string& type) {
  if (type == "integer") {
    return v.is_number_integer() ||
           (v.is_number_float() &&
            v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>())));
  }
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_boolean();
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  return true;
}

}  // namespace

std::optional<nlohmann::json> yaml_to_json(const std::string& text, std::string* error) {
  try {
    return node_to_json(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    if (error != nullptr) *error = e.what();
    return std::nullopt;
  }
}

std::vector<ParamSpec> schema_params(const nlohmann::json& schema) {
  std::vector<ParamSpec> out;
  if (!schema.is_object()) return out;
  const nlohmann::json* props = &schema;
  std::vector<std::string> required_list;
  const bool json_schema = schema.contains("properties") && schema["properties"].is_object();
  if (json_schema) {
    props = &schema["properties"];
    if (auto it = schema.find("required"); it != schema.end() && it->is_array()) {
      for (const auto& r : *it) {
        if (r.is_string()) required_list.push_back(r.get<std::string>());
      }
    }
  }
  for (const auto& [name, def] : props->items()) {
    ParamSpec p;
    p.name = name;
    if (def.is_object()) {
      if (auto t = def.find("type"); t != def.end() && t->is_string())
        p.type = t->get<std::string>();
      if (auto r = def.find("required"); r != def.end() && r->is_boolean())
        p.required = r->get<bool>();
      if (auto s = def.find("secret"); s != def.end() && s->is_boolean()) p.secret = s->get<bool>();
      if (auto d = def.find("default"); d != def.end()) p.default_value = *d;
      if (auto d = def.find("description"); d != def.end() && d->is_string()) {
        p.description = d->get<std::string>();
      }
    }
    for (const auto& r : required_list) {
      if (r == name) p.required = true;
    }
    out.push_back(std::move(p));
  }
  return out;
}

std::optional<nlohmann::json> coerce_value(const std::string& name, const std::string& raw,
                                           const ParamSpec* spec, std::string* error) {
  const std::string type = spec != nullptr ? spec->type : "";
  if (type == "string") return nlohmann::json(raw);
  if (type == "integer" || type == "number" || type == "boolean" || type == "object" ||
      type == "array") {
    auto v = parse_value(raw);
    if (v && fits(*v, type)) {
      if (type == "integer" && v->is_number_float())
        return nlohmann::json(static_cast<int64_t>(v->get<double>()));
      return v;
    }
    *error = "parameter '" + name + "' must be " +
             (type == "integer" || type == "array" ? "an " : "a ") + type + ", got '" + raw + "'";
    return std::nullopt;
  }
  auto j = nlohmann::json::parse(raw, nullptr, false);
  if (!j.is_discarded()) return j;
  return nlohmann::json(raw);
}

nlohmann::json parse_key_values(const std::vector<std::string>& args,
                                const nlohmann::json& schema) {
  const auto specs = schema_params(schema);
  auto out = nlohmann::json::object();
  for (const auto& arg : args) {
    const size_t eq = arg.find('=');
    if (eq == std::string::npos || eq == 0) {
      usage_error("expected key=value, got '" + arg + "'");
    }
    const std::string key = arg.substr(0, eq);
    const std::string raw = arg.substr(eq + 1);
    const ParamSpec* spec = nullptr;
    for (const auto& s : specs) {
      if (s.name == key) spec = &s;
    }
    std::string error;
    auto v = coerce_value(key, raw, spec, &error);
    if (!v) usage_error(error);
    out[key] = std::move(*v);
  }
  return out;
}

nlohmann::json load_params_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) usage_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const bool yaml = path.size() >= 5 && (path.ends_with(".yaml") || path.ends_with(".yml"));
  std::optional<nlohmann::json> doc;
  std::string error;
  if (yaml) {
    doc = yaml_to_json(text, &error);
  } else {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) {
      error = "not valid JSON";
    } else {
      doc = std::move(j);
    }
  }
  if (!doc) usage_error(path + ": " + error);
  if (!doc->is_object()) usage_error(path + ": expected an object of parameters");
  return *doc;
}

}  // namespace attune::cli::client
