// Parameter document rendering (json, dotenv, yaml) and YAML → JSON parsing.
#include "runners/formats.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <regex>

namespace attune::runners {
namespace {

std::string compact(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

void flatten_dotenv(const Json& value, const std::string& key,
                    std::map<std::string, std::string>& out) {
  if (value.is_object() && !value.empty()) {
    for (const auto& [k, v] : value.items())
      flatten_dotenv(v, key.empty() ? k : key + "." + k, out);
    return;
  }
  if (value.is_null()) {
    out[key] = "";
  } else if (value.is_string()) {
    out[key] = value.get<std::string>();
  } else {
    out[key] = compact(value);  // numbers, booleans, arrays, empty objects
  }
}

void emit_yaml(YAML::Emitter& out, const Json& value) {
  switch (value.type()) {
    case Json::value_t::object:
      out << YAML::BeginMap;
      for (const auto& [k, v] : value.items()) {
        out << YAML::Key << YAML::DoubleQuoted << k << YAML::Value;
        emit_yaml(out, v);
      }
      out << YAML::EndMap;
      break;
    case Json::value_t::array:
      out << YAML::BeginSeq;
      for (const auto& v : value) emit_yaml(out, v);
      out << YAML::EndSeq;
      break;
    case Json::value_t::string:
      out << YAML::DoubleQuoted << value.get<std::string>();
      break;
    case Json::value_t::boolean:
      out << YAML::TrueFalseBool << value.get<bool>();
      break;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      out << compact(value);  // plain scalar: the shortest round-trip spelling
      break;
    case Json::value_t::null:
    case Json::value_t::discarded:
      out << YAML::Null;
      break;
    case Json::value_t::binary:
      out << YAML::DoubleQuoted << compact(value);
      break;
  }
}

// YAML 1.2 core schema resolution of a plain scalar.
Json resolve_plain_scalar(const std::string& s) {
  static const std::regex kInt(R"([-+]?[0-9]+)");
  static const std::regex kOct(R"(0o[0-7]+)");
  static const std::regex kHex(R"(0x[0-9a-fA-F]+)");
  static const std::regex kFloat(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  errno = 0;
  if (std::regex_match(s, kInt)) {
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (errno == 0) return v;
    return std::strtod(s.c_str(), nullptr);  // beyond int64: keep it numeric
  }
  if (std::regex_match(s, kOct)) return std::strtoll(s.c_str() + 2, nullptr, 8);
  if (std::regex_match(s, kHex)) return std::strtoll(s.c_str() + 2, nullptr, 16);
  if (std::regex_match(s, kFloat)) return std::strtod(s.c_str(), nullptr);
  // JSON has no inf/nan: keep them as the strings they were written as.
  return s;
}

Json yaml_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      if (node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str") return node.Scalar();
      return resolve_plain_scalar(node.Scalar());
    case YAML::NodeType::Sequence: {
      Json out = Json::array();
      for (const auto& item : node) out.push_back(yaml_to_json(item));
      return out;
    }
    case YAML::NodeType::Map: {
      Json out = Json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = yaml_to_json(kv.second);
      return out;
    }
  }
  return nullptr;
}

}  // namespace

std::string shell_quote(std::string_view raw) {
  std::string out = "'";
  for (char c : raw) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

Result<std::string> render_parameters(const Json& document, std::string_view format) {
  if (!document.is_object()) {
    return make_error(Errc::kBadRequest, "the parameter document must be a JSON object");
  }
  if (format == "json") return compact(document) + "\n";
  if (format == "dotenv") {
    std::map<std::string, std::string> lines;
    for (const auto& [k, v] : document.items()) flatten_dotenv(v, k, lines);
    std::string out;
    for (const auto& [k, v] : lines) out += k + "=" + shell_quote(v) + "\n";
    return out;
  }
  if (format == "yaml") {
    YAML::Emitter out;
    emit_yaml(out, document);
    if (!out.good()) return make_error(Errc::kBadRequest, "yaml: " + out.GetLastError());
    return std::string(out.c_str()) + "\n";
  }
  return make_error(Errc::kBadRequest,
                    "unknown parameter_format '" + std::string(format) + "' (json|dotenv|yaml)");
}

Result<Json> parse_yaml(std::string_view text, int* error_line) {
  try {
    return yaml_to_json(YAML::Load(std::string(text)));
  } catch (const YAML::Exception& e) {
    if (error_line != nullptr) *error_line = e.mark.is_null() ? 0 : e.mark.line + 1;
    return make_error(Errc::kBadRequest, std::string("invalid YAML: ") + e.what());
  }
}

}  // namespace attune::runners
