// Scope, Expression, Template and CompiledParams: the public face of the expression language.
#include "processors/expr/expr.h"

#include <cctype>
#include <optional>

#include "processors/expr/ast.h"
#include "processors/expr/evaluator.h"
#include "processors/expr/parser.h"

namespace attune::expr {

using internal::Node;
using internal::Value;

// ---- Scope ----

void Scope::bind(std::string name, const Json* value) {
  for (auto& [n, v] : values_) {
    if (n == name) {
      v = value;
      return;
    }
  }
  values_.emplace_back(std::move(name), value);
}

void Scope::bind_function(std::string name, Function fn) {
  for (auto& [n, f] : functions_) {
    if (n == name) {
      f = std::move(fn);
      return;
    }
  }
  functions_.emplace_back(std::move(name), std::move(fn));
}

const Json* Scope::find(std::string_view name) const {
  for (const Scope* s = this; s != nullptr; s = s->parent_) {
    for (const auto& [n, v] : s->values_) {
      if (n == name) return v;
    }
  }
  return nullptr;
}

const Function* Scope::find_function(std::string_view name) const {
  for (const Scope* s = this; s != nullptr; s = s->parent_) {
    for (const auto& [n, f] : s->functions_) {
      if (n == name) return &f;
    }
  }
  return nullptr;
}

const Clock& Scope::clock() const {
  for (const Scope* s = this; s != nullptr; s = s->parent_) {
    if (s->clock_ != nullptr) return *s->clock_;
  }
  return SystemClock::instance();
}

// ---- Expression ----

namespace {

bool is_blank(std::string_view s) {
  for (char c : s) {
    if (!std::isspace(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

Result<Expression> Expression::compile(std::string_view source) {
  size_t b = 0;
  while (b < source.size() && std::isspace(static_cast<unsigned char>(source[b]))) ++b;
  if (source.substr(b, 2) == "{{") {
    size_t end = 0;
    auto parsed = internal::parse_expression(source, b + 2, /*in_template=*/true, &end);
    if (!parsed.ok()) return parsed.error();
    if (!is_blank(source.substr(end))) {
      return make_error(Errc::kValidation, "unexpected text after '}}' at column " +
                                               std::to_string(end + 1) +
                                               " (an expression holds a single {{ ... }})");
    }
    return Expression(std::shared_ptr<const Node>(std::move(parsed).value()));
  }
  auto parsed = internal::parse_expression(source, 0, /*in_template=*/false, nullptr);
  if (!parsed.ok()) return parsed.error();
  return Expression(std::shared_ptr<const Node>(std::move(parsed).value()));
}

Result<Json> Expression::evaluate(const Scope& scope, bool* defined) const {
  Value v;
  std::string error;
  if (!internal::evaluate(*root_, scope, &v, &error)) {
    return make_error(Errc::kValidation, std::move(error));
  }
  if (defined != nullptr) *defined = !v.undefined();
  return std::move(v).take();
}

Result<Json> Expression::evaluate(const Scope& scope) const { return evaluate(scope, nullptr); }

Result<bool> Expression::test(const Scope& scope) const {
  Value v;
  std::string error;
  if (!internal::evaluate(*root_, scope, &v, &error)) {
    return make_error(Errc::kValidation, std::move(error));
  }
  return internal::truthy(v);
}

// ---- Template ----

Result<Template> Template::compile(std::string_view text) {
  Template t;
  size_t pos = 0;
  std::string pending;
  while (true) {
    size_t open = text.find("{{", pos);
    if (open == std::string_view::npos) {
      pending.append(text.substr(pos));
      break;
    }
    pending.append(text.substr(pos, open - pos));
    size_t end = 0;
    auto parsed = internal::parse_expression(text, open + 2, /*in_template=*/true, &end);
    if (!parsed.ok()) return parsed.error();
    t.texts_.push_back(std::move(pending));
    pending.clear();
    t.exprs_.push_back(Expression(std::shared_ptr<const Node>(std::move(parsed).value())));
    pos = end;
  }
  t.texts_.push_back(std::move(pending));
  return t;
}

Result<Json> Template::render(const Scope& scope) const {
  if (exprs_.empty()) return Json(texts_[0]);
  if (exprs_.size() == 1 && texts_[0].empty() && texts_[1].empty()) {
    return exprs_[0].evaluate(scope);
  }
  std::string out = texts_[0];
  for (size_t i = 0; i < exprs_.size(); ++i) {
    Value v;
    std::string error;
    if (!internal::evaluate(*exprs_[i].root_, scope, &v, &error)) {
      return make_error(Errc::kValidation, std::move(error));
    }
    internal::append_text(v, &out);
    out += texts_[i + 1];
  }
  return Json(std::move(out));
}

// ---- CompiledParams ----

namespace internal {

// A mirror of the parameter document: subtrees without templates are kept as literal JSON.
struct ParamNode {
  enum class Kind : uint8_t { kLiteral, kTemplate, kObject, kArray };
  Kind kind = Kind::kLiteral;
  Json literal;
  std::optional<Template> tmpl;
  std::string path;  // for render errors
  std::vector<std::string> keys;      // kObject: keys[i] names children[i]
  std::vector<ParamNode> children;    // kObject, kArray
};

}  // namespace internal

namespace {

using internal::ParamNode;

bool plain_key(const std::string& k) {
  if (k.empty() || std::isdigit(static_cast<unsigned char>(k[0]))) return false;
  for (char c : k) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  }
  return true;
}

std::string child_path(const std::string& parent, const std::string& key) {
  if (plain_key(key)) return parent + "." + key;
  return parent + "[" + internal::dump_compact(Json(key)) + "]";
}

// Depth guard: parameter documents come from users, and compile/render recurse per level.
constexpr int kMaxParamDepth = 100;

Status compile_param(const Json& j, std::string path, int depth, ParamNode* out) {
  if (depth > kMaxParamDepth) {
    return make_error(Errc::kValidation, path + ": nested too deeply (limit " +
                                             std::to_string(kMaxParamDepth) + ")");
  }
  out->path = path;
  if (j.is_string()) {
    auto t = Template::compile(j.get_ref<const std::string&>());
    if (!t.ok()) return make_error(Errc::kValidation, path + ": " + t.error().message);
    if (t->is_template()) {
      out->kind = ParamNode::Kind::kTemplate;
      out->tmpl = std::move(t).value();
      return {};
    }
  } else if (j.is_object() || j.is_array()) {
    bool any_template = false;
    if (j.is_object()) {
      for (const auto& [key, value] : j.items()) {
        ParamNode child;
        if (Status s = compile_param(value, child_path(path, key), depth + 1, &child); !s.ok()) {
          return s;
        }
        any_template |= child.kind != ParamNode::Kind::kLiteral;
        out->keys.push_back(key);
        out->children.push_back(std::move(child));
      }
    } else {
      for (size_t i = 0; i < j.size(); ++i) {
        ParamNode child;
        std::string p = path + "[" + std::to_string(i) + "]";
        if (Status s = compile_param(j[i], std::move(p), depth + 1, &child); !s.ok()) return s;
        any_template |= child.kind != ParamNode::Kind::kLiteral;
        out->children.push_back(std::move(child));
      }
    }
    if (any_template) {
      out->kind = j.is_object() ? ParamNode::Kind::kObject : ParamNode::Kind::kArray;
      return {};
    }
    out->keys.clear();
    out->children.clear();
  }
  out->kind = ParamNode::Kind::kLiteral;
  out->literal = j;
  return {};
}

Status render_param(const ParamNode& n, const Scope& scope, Json* out) {
  switch (n.kind) {
    case ParamNode::Kind::kLiteral:
      *out = n.literal;
      return {};
    case ParamNode::Kind::kTemplate: {
      auto r = n.tmpl->render(scope);
      if (!r.ok()) return make_error(Errc::kValidation, n.path + ": " + r.error().message);
      *out = std::move(r).value();
      return {};
    }
    case ParamNode::Kind::kObject: {
      *out = Json::object();
      for (size_t i = 0; i < n.children.size(); ++i) {
        Json v;
        if (Status s = render_param(n.children[i], scope, &v); !s.ok()) return s;
        (*out)[n.keys[i]] = std::move(v);
      }
      return {};
    }
    case ParamNode::Kind::kArray: {
      *out = Json::array();
      for (const auto& child : n.children) {
        Json v;
        if (Status s = render_param(child, scope, &v); !s.ok()) return s;
        out->push_back(std::move(v));
      }
      return {};
    }
  }
  return make_error(Errc::kInternal, "invalid parameter node");
}

}  // namespace

Result<CompiledParams> CompiledParams::compile(const Json& params, std::string_view root) {
  auto node = std::make_shared<ParamNode>();
  if (Status s = compile_param(params, std::string(root), 0, node.get()); !s.ok()) {
    return s.error();
  }
  CompiledParams p;
  p.root_ = std::move(node);
  return p;
}

Result<Json> CompiledParams::render(const Scope& scope) const {
  Json out;
  if (Status s = render_param(*root_, scope, &out); !s.ok()) return s.error();
  return out;
}

}  // namespace attune::expr
