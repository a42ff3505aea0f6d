// Tree-walking evaluator for the compiled AST. Paths and literals are returned as borrowed pointers
// (no JSON copies); only operators and filters that compute new values allocate.
#include "processors/expr/evaluator.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>
#include <string_view>
#include <utility>

#include "processors/expr/parser.h"

namespace attune::expr::internal {
namespace {

// A number as an exact int64 when it is integral and fits, else a double.
struct Num {
  bool is_int = false;
  int64_t i = 0;
  double d = 0;
  double as_double() const { return is_int ? static_cast<double>(i) : d; }
};

bool to_num(const Json& j, Num* n) {
  switch (j.type()) {
    case Json::value_t::number_integer:
      n->is_int = true;
      n->i = j.get_ref<const Json::number_integer_t&>();
      return true;
    case Json::value_t::number_unsigned: {
      uint64_t u = j.get_ref<const Json::number_unsigned_t&>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        n->is_int = true;
        n->i = static_cast<int64_t>(u);
      } else {
        n->is_int = false;
        n->d = static_cast<double>(u);
      }
      return true;
    }
    case Json::value_t::number_float:
      n->is_int = false;
      n->d = j.get_ref<const Json::number_float_t&>();
      return true;
    default:
      return false;
  }
}

Json from_num(const Num& n) { return n.is_int ? Json(n.i) : Json(n.d); }

// UTF-8 code point boundaries; invalid bytes count as one unit each.
size_t utf8_unit(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
  if (i + len > s.size()) return 1;
  for (size_t k = 1; k < len; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 1;
  }
  return len;
}

std::vector<std::string_view> utf8_split(std::string_view s) {
  std::vector<std::string_view> out;
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_unit(s, i);
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

size_t utf8_length(std::string_view s) {
  size_t count = 0;
  for (size_t i = 0; i < s.size(); i += utf8_unit(s, i)) ++count;
  return count;
}

const char* op_symbol(Op op) {
  switch (op) {
    case Op::kNeg: return "-";
    case Op::kPos: return "+";
    case Op::kNot: return "not";
    case Op::kAdd: return "+";
    case Op::kSub: return "-";
    case Op::kMul: return "*";
    case Op::kDiv: return "/";
    case Op::kFloorDiv: return "//";
    case Op::kMod: return "%";
    case Op::kConcat: return "~";
    case Op::kIn: return "in";
    case Op::kNotIn: return "not in";
    case Op::kEq: return "==";
    case Op::kNe: return "!=";
    case Op::kLt: return "<";
    case Op::kLe: return "<=";
    case Op::kGt: return ">";
    case Op::kGe: return ">=";
  }
  return "?";
}

bool equal(const Value& a, const Value& b) {
  if (a.undefined() || b.undefined()) return a.undefined() && b.undefined();
  return a.json() == b.json();
}

std::string_view trim_view(std::string_view s) {
  size_t b = 0;
  size_t e = s.size();
  auto space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  };
  while (b < e && space(s[b])) ++b;
  while (e > b && space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

bool parse_int_text(std::string_view s, int64_t* out) {
  s = trim_view(s);
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool parse_float_text(std::string_view s, double* out) {
  s = trim_view(s);
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool double_to_int(double d, int64_t* out) {
  if (!std::isfinite(d) || d >= 9223372036854775808.0 || d < -9223372036854775808.0) return false;
  *out = static_cast<int64_t>(d);
  return true;
}

class Evaluator {
 public:
  Evaluator(const Scope& scope, std::string* error) : scope_(scope), error_(error) {}

  bool eval(const Node& n, Value* out) {
    switch (n.kind) {
      case NodeKind::kLiteral:
        *out = Value::borrowed(&n.literal);
        return true;
      case NodeKind::kPath:
        return path(n, out);
      case NodeKind::kList: {
        Json arr = Json::array();
        for (const auto& k : n.kids) {
          Value v;
          if (!eval(*k, &v)) return false;
          arr.push_back(std::move(v).take());
        }
        *out = Value::owned(std::move(arr));
        return true;
      }
      case NodeKind::kObject: {
        Json obj = Json::object();
        for (size_t i = 0; i + 1 < n.kids.size(); i += 2) {
          Value v;
          if (!eval(*n.kids[i + 1], &v)) return false;
          obj[n.kids[i]->literal.get_ref<const std::string&>()] = std::move(v).take();
        }
        *out = Value::owned(std::move(obj));
        return true;
      }
      case NodeKind::kUnary:
        return unary(n, out);
      case NodeKind::kBinary:
        return binary(n, out);
      case NodeKind::kCompare:
        return compare(n, out);
      case NodeKind::kAnd:
      case NodeKind::kOr: {
        Value v;
        if (!eval(*n.kids[0], &v)) return false;
        bool t = truthy(v);
        if (t == (n.kind == NodeKind::kOr)) {
          *out = Value::boolean(t);
          return true;
        }
        if (!eval(*n.kids[1], &v)) return false;
        *out = Value::boolean(truthy(v));
        return true;
      }
      case NodeKind::kCond: {
        Value c;
        if (!eval(*n.kids[0], &c)) return false;
        if (truthy(c)) return eval(*n.kids[1], out);
        if (n.kids.size() > 2) return eval(*n.kids[2], out);
        *out = Value();
        return true;
      }
      case NodeKind::kFilter:
        return filter(n, out);
      case NodeKind::kTest:
        return test(n, out);
      case NodeKind::kCall:
        return call(n, out);
    }
    return fail(n, "invalid expression node");
  }

 private:
  bool fail(const Node& n, std::string message) {
    *error_ = std::move(message) + " at column " + std::to_string(n.column);
    return false;
  }

  // Sets *cur to `child` (a pointer inside the previous value, or null for undefined). A child of
  // an owned value is copied, since the owner is released when *cur is replaced.
  static void step_owned_or_borrowed(Value* cur, bool borrowed, const Json* child) {
    if (child == nullptr) {
      *cur = Value();
    } else if (borrowed) {
      *cur = Value::borrowed(child);
    } else {
      Json copy = *child;
      *cur = Value::owned(std::move(copy));
    }
  }

  static const Json* member(const Json& j, std::string_view key) {
    if (!j.is_object()) return nullptr;
    const auto& obj = j.get_ref<const Json::object_t&>();
    auto it = obj.find(key);
    return it == obj.end() ? nullptr : &it->second;
  }

  // Element `index` of an array (negative counts from the end); string indexing yields a code point.
  static bool element(const Value& cur, int64_t index, bool borrowed, Value* out) {
    const Json& j = cur.json();
    if (j.is_array()) {
      auto size = static_cast<int64_t>(j.size());
      if (index < 0) index += size;
      if (index < 0 || index >= size) {
        *out = Value();
        return true;
      }
      step_owned_or_borrowed(out, borrowed, &j[static_cast<size_t>(index)]);
      return true;
    }
    if (j.is_string()) {
      auto chars = utf8_split(j.get_ref<const std::string&>());
      auto size = static_cast<int64_t>(chars.size());
      if (index < 0) index += size;
      if (index < 0 || index >= size) {
        *out = Value();
      } else {
        *out = Value::owned(Json(std::string(chars[static_cast<size_t>(index)])));
      }
      return true;
    }
    *out = Value();
    return true;
  }

  bool path(const Node& n, Value* out) {
    Value cur;
    if (n.kids.empty()) {
      cur = Value::borrowed(scope_.find(n.name));
    } else if (!eval(*n.kids[0], &cur)) {
      return false;
    }
    for (const Segment& seg : n.segments) {
      if (cur.undefined()) break;
      switch (seg.kind) {
        case Segment::Kind::kKey: {
          const Json* child = member(cur.json(), seg.key);
          Value next;
          step_owned_or_borrowed(&next, cur.is_borrowed(), child);
          cur = std::move(next);
          break;
        }
        case Segment::Kind::kIndex: {
          Value next;
          element(cur, seg.index, cur.is_borrowed(), &next);
          cur = std::move(next);
          break;
        }
        case Segment::Kind::kDynamic: {
          Value key;
          if (!eval(*seg.expr, &key)) return false;
          const Json& k = key.json();
          Value next;
          if (key.undefined()) {
            next = Value();
          } else if (k.is_string()) {
            step_owned_or_borrowed(&next, cur.is_borrowed(),
                                   member(cur.json(), k.get_ref<const std::string&>()));
          } else if (k.is_number_integer()) {
            Num num;
            to_num(k, &num);
            if (num.is_int) {
              element(cur, num.i, cur.is_borrowed(), &next);
            }
          }
          cur = std::move(next);
          break;
        }
      }
    }
    *out = std::move(cur);
    return true;
  }

  bool unary(const Node& n, Value* out) {
    Value v;
    if (!eval(*n.kids[0], &v)) return false;
    if (n.op == Op::kNot) {
      *out = Value::boolean(!truthy(v));
      return true;
    }
    Num num;
    if (v.undefined() || !to_num(v.json(), &num)) {
      return fail(n, std::string("bad operand type for unary '") + op_symbol(n.op) + "': " +
                         type_name(v));
    }
    if (n.op == Op::kNeg) {
      if (num.is_int && num.i == std::numeric_limits<int64_t>::min()) {
        num.is_int = false;
        num.d = -static_cast<double>(num.i);
      } else if (num.is_int) {
        num.i = -num.i;
      } else {
        num.d = -num.d;
      }
    }
    *out = Value::owned(from_num(num));
    return true;
  }

  bool binary(const Node& n, Value* out) {
    Value a;
    Value b;
    if (!eval(*n.kids[0], &a) || !eval(*n.kids[1], &b)) return false;
    if (n.op == Op::kConcat) {
      std::string s;
      append_text(a, &s);
      append_text(b, &s);
      if (s.size() > kMaxResultSize) return fail(n, "result of '~' too large");
      *out = Value::owned(Json(std::move(s)));
      return true;
    }
    const Json& x = a.json();
    const Json& y = b.json();
    Num p;
    Num q;
    bool numbers = !a.undefined() && !b.undefined() && to_num(x, &p) && to_num(y, &q);
    if (!numbers) {
      if (n.op == Op::kAdd && !a.undefined() && !b.undefined()) {
        if (x.is_string() && y.is_string()) {
          const auto& s1 = x.get_ref<const std::string&>();
          const auto& s2 = y.get_ref<const std::string&>();
          if (s1.size() + s2.size() > kMaxResultSize) return fail(n, "result of '+' too large");
          *out = Value::owned(Json(s1 + s2));
          return true;
        }
        if (x.is_array() && y.is_array()) {
          if (x.size() + y.size() > kMaxResultSize) return fail(n, "result of '+' too large");
          Json r = std::move(a).take();
          for (const auto& e : y) r.push_back(e);
          *out = Value::owned(std::move(r));
          return true;
        }
      }
      if (n.op == Op::kMul && !a.undefined() && !b.undefined() && x.is_string() &&
          y.is_number_integer()) {
        int64_t times = y.get<int64_t>();
        const auto& s = x.get_ref<const std::string&>();
        if (times > 0 && s.size() * static_cast<uint64_t>(times) > kMaxResultSize) {
          return fail(n, "result of '*' too large");
        }
        std::string r;
        for (int64_t i = 0; i < times; ++i) r += s;
        *out = Value::owned(Json(std::move(r)));
        return true;
      }
      return fail(n, std::string("unsupported operand types for '") + op_symbol(n.op) + "': " +
                         type_name(a) + " and " + type_name(b));
    }
    Num r;
    switch (n.op) {
      case Op::kAdd:
      case Op::kSub:
      case Op::kMul:
        if (p.is_int && q.is_int) {
          int64_t v;
          bool overflow = n.op == Op::kAdd   ? __builtin_add_overflow(p.i, q.i, &v)
                          : n.op == Op::kSub ? __builtin_sub_overflow(p.i, q.i, &v)
                                             : __builtin_mul_overflow(p.i, q.i, &v);
          if (!overflow) {
            r.is_int = true;
            r.i = v;
            break;
          }
        }
        r.d = n.op == Op::kAdd   ? p.as_double() + q.as_double()
              : n.op == Op::kSub ? p.as_double() - q.as_double()
                                 : p.as_double() * q.as_double();
        break;
      case Op::kDiv:
        if (q.as_double() == 0) return fail(n, "division by zero");
        r.d = p.as_double() / q.as_double();
        break;
      case Op::kFloorDiv:
        if (q.is_int ? q.i == 0 : q.d == 0) return fail(n, "division by zero");
        if (p.is_int && q.is_int && !(p.i == std::numeric_limits<int64_t>::min() && q.i == -1)) {
          int64_t d = p.i / q.i;
          if ((p.i % q.i != 0) && ((p.i < 0) != (q.i < 0))) --d;
          r.is_int = true;
          r.i = d;
        } else {
          r.d = std::floor(p.as_double() / q.as_double());
        }
        break;
      case Op::kMod:
        if (q.is_int ? q.i == 0 : q.d == 0) return fail(n, "division by zero");
        if (p.is_int && q.is_int) {
          int64_t m = q.i == -1 ? 0 : p.i % q.i;
          if (m != 0 && ((m < 0) != (q.i < 0))) m += q.i;
          r.is_int = true;
          r.i = m;
        } else {
          double m = std::fmod(p.as_double(), q.as_double());
          if (m != 0 && ((m < 0) != (q.as_double() < 0))) m += q.as_double();
          r.d = m;
        }
        break;
      default:
        return fail(n, "invalid binary operator");
    }
    *out = Value::owned(from_num(r));
    return true;
  }

  // One comparison of a chain; false on a type error.
  bool compare_one(const Node& n, Op op, const Value& a, const Value& b, bool* result) {
    switch (op) {
      case Op::kEq:
        *result = equal(a, b);
        return true;
      case Op::kNe:
        *result = !equal(a, b);
        return true;
      case Op::kIn:
      case Op::kNotIn: {
        bool found = false;
        if (!contains(n, b, a, &found)) return false;
        *result = op == Op::kIn ? found : !found;
        return true;
      }
      default: {
        int c = 0;
        if (a.undefined() || b.undefined() || !order(a.json(), b.json(), &c)) {
          return fail(n, std::string("'") + op_symbol(op) + "' not supported between " +
                             type_name(a) + " and " + type_name(b));
        }
        *result = op == Op::kLt ? c < 0 : op == Op::kLe ? c <= 0 : op == Op::kGt ? c > 0 : c >= 0;
        return true;
      }
    }
  }

  // `needle in haystack`: substring, array element or object key.
  bool contains(const Node& n, const Value& haystack, const Value& needle, bool* found) {
    const Json& h = haystack.json();
    if (!haystack.undefined() && h.is_array()) {
      *found = false;
      if (needle.undefined()) return true;
      const Json& x = needle.json();
      for (const auto& e : h) {
        if (e == x) {
          *found = true;
          break;
        }
      }
      return true;
    }
    if (!haystack.undefined() && h.is_string() && !needle.undefined() && needle.json().is_string()) {
      *found = h.get_ref<const std::string&>().find(needle.json().get_ref<const std::string&>()) !=
               std::string::npos;
      return true;
    }
    if (!haystack.undefined() && h.is_object() && !needle.undefined() && needle.json().is_string()) {
      *found = member(h, needle.json().get_ref<const std::string&>()) != nullptr;
      return true;
    }
    return fail(n, std::string("'in' not supported between ") + type_name(needle) + " and " +
                       type_name(haystack));
  }

  bool compare(const Node& n, Value* out) {
    Value left;
    if (!eval(*n.kids[0], &left)) return false;
    for (size_t i = 0; i < n.ops.size(); ++i) {
      Value right;
      if (!eval(*n.kids[i + 1], &right)) return false;
      bool r = false;
      if (!compare_one(n, n.ops[i], left, right, &r)) return false;
      if (!r) {
        *out = Value::boolean(false);
        return true;
      }
      left = std::move(right);
    }
    *out = Value::boolean(true);
    return true;
  }

  bool test(const Node& n, Value* out) {
    Value v;
    if (!eval(*n.kids[0], &v)) return false;
    const Json& j = v.json();
    bool d = !v.undefined();
    bool r = false;
    switch (n.test) {
      case Test::kDefined: r = d; break;
      case Test::kUndefined: r = !d; break;
      case Test::kNone: r = d && j.is_null(); break;
      case Test::kString: r = d && j.is_string(); break;
      case Test::kNumber: r = d && j.is_number(); break;
      case Test::kInteger: r = d && j.is_number_integer(); break;
      case Test::kFloat: r = d && j.is_number_float(); break;
      case Test::kBoolean: r = d && j.is_boolean(); break;
      case Test::kMapping: r = d && j.is_object(); break;
      case Test::kSequence: r = d && j.is_array(); break;
      case Test::kEven:
      case Test::kOdd: {
        Num num;
        if (d && j.is_number_integer() && to_num(j, &num) && num.is_int) {
          r = (num.i % 2 == 0) == (n.test == Test::kEven);
        }
        break;
      }
    }
    *out = Value::boolean(r != n.negated);
    return true;
  }

  bool call(const Node& n, Value* out) {
    const Function* fn = scope_.find_function(n.name);
    if (fn == nullptr) return fail(n, "unknown function '" + n.name + "'");
    std::vector<Json> args;
    args.reserve(n.kids.size());
    for (const auto& k : n.kids) {
      Value v;
      if (!eval(*k, &v)) return false;
      args.push_back(std::move(v).take());
    }
    Result<Json> r = (*fn)(std::span<const Json>(args));
    if (!r.ok()) return fail(n, "function '" + n.name + "': " + r.error().message);
    *out = Value::owned(std::move(r).value());
    return true;
  }

  bool type_error(const Node& n, const char* expected, const Value& got) {
    return fail(n, "filter '" + n.name + "' expects " + expected + ", got " + type_name(got));
  }

  bool filter(const Node& n, Value* out) {
    Value v;
    if (!eval(*n.kids[0], &v)) return false;
    Value args[2];
    size_t nargs = n.kids.size() - 1;
    for (size_t i = 0; i < nargs && i < 2; ++i) {
      if (!eval(*n.kids[i + 1], &args[i])) return false;
    }
    const Json& j = v.json();
    bool d = !v.undefined();
    switch (n.filter) {
      case Filter::kDefault: {
        bool use_default = !d || j.is_null() || (nargs > 1 && truthy(args[1]) && !truthy(v));
        *out = use_default ? std::move(args[0]) : std::move(v);
        return true;
      }
      case Filter::kUpper:
      case Filter::kLower:
      case Filter::kCapitalize: {
        if (!d || !j.is_string()) return type_error(n, "a string", v);
        std::string s = j.get<std::string>();
        for (size_t i = 0; i < s.size(); ++i) {
          char& c = s[i];
          bool up = n.filter == Filter::kUpper || (n.filter == Filter::kCapitalize && i == 0);
          if (up && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
          if (!up && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        }
        *out = Value::owned(Json(std::move(s)));
        return true;
      }
      case Filter::kTrim:
        if (!d || !j.is_string()) return type_error(n, "a string", v);
        *out = Value::owned(Json(std::string(trim_view(j.get_ref<const std::string&>()))));
        return true;
      case Filter::kLength:
        if (d && j.is_string()) {
          *out = Value::owned(Json(static_cast<int64_t>(utf8_length(j.get_ref<const std::string&>()))));
        } else if (d && (j.is_array() || j.is_object())) {
          *out = Value::owned(Json(static_cast<int64_t>(j.size())));
        } else {
          return type_error(n, "a string, array or object", v);
        }
        return true;
      case Filter::kInt:
      case Filter::kFloat:
        return convert_number(n, v, nargs > 0 ? &args[0] : nullptr, out);
      case Filter::kString: {
        std::string s;
        append_text(v, &s);
        *out = Value::owned(Json(std::move(s)));
        return true;
      }
      case Filter::kJson: {
        int indent = -1;
        if (nargs > 0) {
          Num num;
          if (args[0].undefined() || !to_num(args[0].json(), &num) || !num.is_int || num.i < 0 ||
              num.i > 16) {
            return fail(n, "filter 'json' indent must be an integer from 0 to 16");
          }
          indent = static_cast<int>(num.i);
        }
        *out = Value::owned(Json(dump_compact(j, indent)));
        return true;
      }
      case Filter::kJoin: {
        if (!d || !j.is_array()) return type_error(n, "an array", v);
        std::string sep;
        if (nargs > 0) append_text(args[0], &sep);
        std::string s;
        bool first = true;
        for (const auto& e : j) {
          if (!first) s += sep;
          first = false;
          append_text(e, &s);
          if (s.size() > kMaxResultSize) return fail(n, "result of 'join' too large");
        }
        *out = Value::owned(Json(std::move(s)));
        return true;
      }
      case Filter::kFirst:
      case Filter::kLast: {
        bool first = n.filter == Filter::kFirst;
        if (d && (j.is_array() || j.is_string())) {
          if (j.empty()) {
            *out = Value();
            return true;
          }
          return element(v, first ? 0 : -1, v.is_borrowed(), out);
        }
        return type_error(n, "an array or string", v);
      }
      case Filter::kKeys:
      case Filter::kValues: {
        if (!d || !j.is_object()) return type_error(n, "an object", v);
        Json arr = Json::array();
        for (const auto& [key, value] : j.items()) {
          if (n.filter == Filter::kKeys) arr.push_back(key);
          else arr.push_back(value);
        }
        *out = Value::owned(std::move(arr));
        return true;
      }
      case Filter::kReplace: {
        if (!d || !j.is_string()) return type_error(n, "a string", v);
        if (args[0].undefined() || !args[0].json().is_string() || args[1].undefined() ||
            !args[1].json().is_string()) {
          return fail(n, "filter 'replace' expects string arguments");
        }
        const auto& s = j.get_ref<const std::string&>();
        const auto& from = args[0].json().get_ref<const std::string&>();
        const auto& to = args[1].json().get_ref<const std::string&>();
        if (from.empty()) {
          *out = std::move(v);
          return true;
        }
        std::string r;
        size_t pos = 0;
        while (true) {
          size_t hit = s.find(from, pos);
          if (hit == std::string::npos) break;
          r.append(s, pos, hit - pos);
          r += to;
          pos = hit + from.size();
          if (r.size() > kMaxResultSize) return fail(n, "result of 'replace' too large");
        }
        r.append(s, pos, std::string::npos);
        *out = Value::owned(Json(std::move(r)));
        return true;
      }
      case Filter::kRound: {
        Num num;
        if (!d || !to_num(j, &num)) return type_error(n, "a number", v);
        int64_t digits = 0;
        if (nargs > 0) {
          Num dn;
          if (args[0].undefined() || !to_num(args[0].json(), &dn) || !dn.is_int || dn.i < 0 ||
              dn.i > 15) {
            return fail(n, "filter 'round' digits must be an integer from 0 to 15");
          }
          digits = dn.i;
        }
        if (num.is_int) {
          *out = std::move(v);
          return true;
        }
        double scale = std::pow(10.0, static_cast<double>(digits));
        double r = std::round(num.d * scale) / scale;
        if (!std::isfinite(r)) r = num.d;
        *out = Value::owned(Json(r));
        return true;
      }
      case Filter::kAbs: {
        Num num;
        if (!d || !to_num(j, &num)) return type_error(n, "a number", v);
        if (num.is_int && num.i == std::numeric_limits<int64_t>::min()) {
          *out = Value::owned(Json(-static_cast<double>(num.i)));
        } else {
          *out = Value::owned(num.is_int ? Json(num.i < 0 ? -num.i : num.i) : Json(std::fabs(num.d)));
        }
        return true;
      }
      case Filter::kBool: {
        bool r;
        if (d && j.is_string()) {
          std::string s(trim_view(j.get_ref<const std::string&>()));
          for (char& c : s) {
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
          }
          r = s == "true" || s == "yes" || s == "on" || s == "1" || s == "y";
        } else {
          r = truthy(v);
        }
        *out = Value::boolean(r);
        return true;
      }
      case Filter::kList: {
        Json arr = Json::array();
        if (d && j.is_array()) {
          *out = std::move(v);
          return true;
        }
        if (d && j.is_string()) {
          for (auto c : utf8_split(j.get_ref<const std::string&>())) arr.push_back(std::string(c));
        } else if (d && j.is_object()) {
          for (const auto& [key, value] : j.items()) arr.push_back(key);
        } else {
          return type_error(n, "an array, string or object", v);
        }
        *out = Value::owned(std::move(arr));
        return true;
      }
      case Filter::kUnique: {
        if (!d || !j.is_array()) return type_error(n, "an array", v);
        Json arr = Json::array();
        std::set<Json> seen;
        for (const auto& e : j) {
          if (seen.insert(e).second) arr.push_back(e);
        }
        *out = Value::owned(std::move(arr));
        return true;
      }
      case Filter::kSort:
        return sort(n, v, nargs > 0 && truthy(args[0]), out);
    }
    return fail(n, "invalid filter");
  }

  bool convert_number(const Node& n, const Value& v, Value* fallback, Value* out) {
    const Json& j = v.json();
    bool want_int = n.filter == Filter::kInt;
    Num num;
    bool ok = false;
    if (!v.undefined()) {
      if (to_num(j, &num)) {
        ok = true;
      } else if (j.is_boolean()) {
        num.is_int = true;
        num.i = j.get<bool>() ? 1 : 0;
        ok = true;
      } else if (j.is_string()) {
        const auto& s = j.get_ref<const std::string&>();
        if (parse_int_text(s, &num.i)) {
          num.is_int = true;
          ok = true;
        } else if (parse_float_text(s, &num.d)) {
          num.is_int = false;
          ok = true;
        }
      }
    }
    if (ok && want_int && !num.is_int) {
      ok = double_to_int(num.d, &num.i);
      num.is_int = true;
    }
    if (!ok) {
      if (fallback != nullptr) {
        *out = std::move(*fallback);
        return true;
      }
      std::string shown;
      if (!v.undefined() && j.is_string()) shown = " " + dump_compact(j);
      return fail(n, "filter '" + n.name + "' cannot convert " + type_name(v) + shown);
    }
    *out = Value::owned(want_int ? Json(num.i) : Json(num.as_double()));
    return true;
  }

  bool sort(const Node& n, const Value& v, bool reverse, Value* out) {
    const Json& j = v.json();
    if (v.undefined() || !j.is_array()) return type_error(n, "an array", v);
    for (size_t i = 1; i < j.size(); ++i) {
      int c = 0;
      if (!order(j[0], j[i], &c)) {
        return fail(n, std::string("filter 'sort' cannot order ") + type_name(j[0]) + " and " +
                           type_name(j[i]));
      }
    }
    if (j.size() == 1) {
      int c = 0;
      if (!order(j[0], j[0], &c)) {
        return fail(n, std::string("filter 'sort' cannot order ") + type_name(j[0]));
      }
    }
    Json arr = j;
    auto& elems = arr.get_ref<Json::array_t&>();
    std::stable_sort(elems.begin(), elems.end(), [reverse](const Json& a, const Json& b) {
      int c = 0;
      order(a, b, &c);
      return reverse ? c > 0 : c < 0;
    });
    *out = Value::owned(std::move(arr));
    return true;
  }

  const Scope& scope_;
  std::string* error_;
};

}  // namespace

bool evaluate(const Node& node, const Scope& scope, Value* out, std::string* error) {
  return Evaluator(scope, error).eval(node, out);
}

bool truthy(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return false;
    case Json::value_t::boolean: return j.get<bool>();
    case Json::value_t::number_integer: return j.get<int64_t>() != 0;
    case Json::value_t::number_unsigned: return j.get<uint64_t>() != 0;
    case Json::value_t::number_float: return j.get<double>() != 0.0;
    case Json::value_t::string:
      return !j.get_ref<const std::string&>().empty();
    case Json::value_t::array:
    case Json::value_t::object:
    case Json::value_t::binary:
      return !j.empty();
    case Json::value_t::discarded: return false;
  }
  return false;
}

bool truthy(const Value& v) { return !v.undefined() && truthy(v.json()); }

std::string dump_compact(const Json& j, int indent) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

void append_text(const Json& j, std::string* out) {
  if (j.is_string()) {
    *out += j.get_ref<const std::string&>();
  } else if (!j.is_null()) {
    *out += dump_compact(j);
  }
}

void append_text(const Value& v, std::string* out) {
  if (!v.undefined()) append_text(v.json(), out);
}

const char* type_name(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::boolean: return "boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float: return "number";
    case Json::value_t::string: return "string";
    case Json::value_t::array: return "array";
    case Json::value_t::object: return "object";
    case Json::value_t::binary: return "binary";
    case Json::value_t::discarded: return "discarded";
  }
  return "value";
}

const char* type_name(const Value& v) { return v.undefined() ? "undefined" : type_name(v.json()); }

bool order(const Json& a, const Json& b, int* cmp) {
  Num p;
  Num q;
  if (to_num(a, &p) && to_num(b, &q)) {
    if (p.is_int && q.is_int) {
      *cmp = p.i < q.i ? -1 : p.i > q.i ? 1 : 0;
    } else {
      double x = p.as_double();
      double y = q.as_double();
      *cmp = x < y ? -1 : x > y ? 1 : 0;
    }
    return true;
  }
  if (a.is_string() && b.is_string()) {
    int c = a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>());
    *cmp = c < 0 ? -1 : c > 0 ? 1 : 0;
    return true;
  }
  return false;
}

}  // namespace attune::expr::internal
