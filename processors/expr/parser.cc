// Lexer and recursive-descent parser for the expression language (API.md §10.3). Precedence,
// lowest first: `x if c else y`, or, and, not, comparisons/in/not in (chained like Python), `~`,
// `+ -`, `* / // %`, unary `- +`, then postfix paths/calls, then `|filter` and `is test`.
#include "processors/expr/parser.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace attune::expr::internal {
namespace {

enum class Tok : uint8_t {
  kEnd, kTemplateEnd, kInt, kFloat, kString, kName,
  kLParen, kRParen, kLBracket, kRBracket, kLBrace, kRBrace, kComma, kDot, kColon, kPipe,
  kPlus, kMinus, kStar, kSlash, kSlashSlash, kPercent, kTilde,
  kEq, kNe, kLt, kLe, kGt, kGe,
};

struct Token {
  Tok kind = Tok::kEnd;
  int column = 0;
  std::string text;  // names and decoded string literals
  int64_t int_value = 0;
  double float_value = 0;
};

struct FilterInfo {
  const char* name;
  Filter filter;
  int min_args;
  int max_args;
};

constexpr std::array kFilters = {
    FilterInfo{"default", Filter::kDefault, 1, 2}, FilterInfo{"d", Filter::kDefault, 1, 2},
    FilterInfo{"upper", Filter::kUpper, 0, 0},     FilterInfo{"lower", Filter::kLower, 0, 0},
    FilterInfo{"trim", Filter::kTrim, 0, 0},       FilterInfo{"length", Filter::kLength, 0, 0},
    FilterInfo{"count", Filter::kLength, 0, 0},    FilterInfo{"int", Filter::kInt, 0, 1},
    FilterInfo{"float", Filter::kFloat, 0, 1},     FilterInfo{"string", Filter::kString, 0, 0},
    FilterInfo{"json", Filter::kJson, 0, 1},       FilterInfo{"tojson", Filter::kJson, 0, 1},
    FilterInfo{"join", Filter::kJoin, 0, 1},       FilterInfo{"first", Filter::kFirst, 0, 0},
    FilterInfo{"last", Filter::kLast, 0, 0},       FilterInfo{"keys", Filter::kKeys, 0, 0},
    FilterInfo{"values", Filter::kValues, 0, 0},   FilterInfo{"replace", Filter::kReplace, 2, 2},
    FilterInfo{"round", Filter::kRound, 0, 1},     FilterInfo{"abs", Filter::kAbs, 0, 0},
    FilterInfo{"bool", Filter::kBool, 0, 0},       FilterInfo{"list", Filter::kList, 0, 0},
    FilterInfo{"unique", Filter::kUnique, 0, 0},   FilterInfo{"sort", Filter::kSort, 0, 1},
    FilterInfo{"capitalize", Filter::kCapitalize, 0, 0},
};

struct TestInfo {
  const char* name;
  Test test;
};

constexpr std::array kTests = {
    TestInfo{"defined", Test::kDefined}, TestInfo{"undefined", Test::kUndefined},
    TestInfo{"none", Test::kNone},       TestInfo{"None", Test::kNone},
    TestInfo{"null", Test::kNone},       TestInfo{"string", Test::kString},
    TestInfo{"number", Test::kNumber},   TestInfo{"integer", Test::kInteger},
    TestInfo{"float", Test::kFloat},     TestInfo{"boolean", Test::kBoolean},
    TestInfo{"mapping", Test::kMapping}, TestInfo{"sequence", Test::kSequence},
    TestInfo{"even", Test::kEven},       TestInfo{"odd", Test::kOdd},
};

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

std::string quote_char(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u < 0x20 || u >= 0x7f) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", u);
    return std::string("'") + buf + "'";
  }
  return std::string("'") + c + "'";
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// "; did you mean 'upper'?" for a near miss among `names`, else "".
template <class Table>
std::string suggestion(std::string_view wrong, const Table& table) {
  const char* best = nullptr;
  size_t best_distance = 3;
  for (const auto& entry : table) {
    size_t d = edit_distance(wrong, entry.name);
    if (d < best_distance) {
      best_distance = d;
      best = entry.name;
    }
  }
  return best == nullptr ? std::string() : std::string("; did you mean '") + best + "'?";
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Lexer {
 public:
  Lexer(std::string_view src, size_t begin, bool in_template)
      : src_(src), pos_(begin), in_template_(in_template) {}

  // Tokenizes up to the end of the source (or the closing `}}` in template mode).
  Status run(std::vector<Token>* out, size_t* end) {
    while (true) {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
      Token t;
      t.column = static_cast<int>(pos_) + 1;
      if (pos_ >= src_.size()) {
        if (in_template_) {
          return make_error(Errc::kValidation, "expected '}}' to close '{{' before end of text at column " +
                                                   std::to_string(t.column));
        }
        t.kind = Tok::kEnd;
        out->push_back(std::move(t));
        *end = pos_;
        return {};
      }
      char c = src_[pos_];
      if (is_name_start(c)) {
        size_t start = pos_;
        while (pos_ < src_.size() && is_name_char(src_[pos_])) ++pos_;
        t.kind = Tok::kName;
        t.text = std::string(src_.substr(start, pos_ - start));
      } else if (is_digit(c)) {
        bool after_dot = !out->empty() && out->back().kind == Tok::kDot;
        if (Status s = number(&t, after_dot); !s.ok()) return s;
      } else if (c == '\'' || c == '"') {
        if (Status s = string(&t); !s.ok()) return s;
      } else if (c == '}' && in_template_ && brace_depth_ == 0) {
        if (pos_ + 1 < src_.size() && src_[pos_ + 1] == '}') {
          t.kind = Tok::kTemplateEnd;
          pos_ += 2;
          out->push_back(std::move(t));
          *end = pos_;
          return {};
        }
        t.kind = Tok::kRBrace;
        ++pos_;
      } else {
        if (Status s = punct(&t); !s.ok()) return s;
      }
      out->push_back(std::move(t));
    }
  }

 private:
  Status error(std::string message, size_t at) const {
    return make_error(Errc::kValidation, message + " at column " + std::to_string(at + 1));
  }

  Status number(Token* t, bool integer_only) {
    size_t start = pos_;
    while (pos_ < src_.size() && is_digit(src_[pos_])) ++pos_;
    bool is_float = false;
    if (!integer_only) {
      if (pos_ + 1 < src_.size() && src_[pos_] == '.' && is_digit(src_[pos_ + 1])) {
        is_float = true;
        ++pos_;
        while (pos_ < src_.size() && is_digit(src_[pos_])) ++pos_;
      }
      if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
        size_t p = pos_ + 1;
        if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
        if (p < src_.size() && is_digit(src_[p])) {
          is_float = true;
          pos_ = p;
          while (pos_ < src_.size() && is_digit(src_[pos_])) ++pos_;
        }
      }
    }
    if (pos_ < src_.size() && is_name_char(src_[pos_])) {
      return error("invalid number literal", start);
    }
    const char* first = src_.data() + start;
    const char* last = src_.data() + pos_;
    if (is_float) {
      t->kind = Tok::kFloat;
      auto r = std::from_chars(first, last, t->float_value);
      if (r.ec != std::errc()) return error("number literal out of range", start);
    } else {
      t->kind = Tok::kInt;
      auto r = std::from_chars(first, last, t->int_value);
      if (r.ec != std::errc()) return error("integer literal too large", start);
    }
    return {};
  }

  Status string(Token* t) {
    size_t start = pos_;
    char quote = src_[pos_++];
    std::string out;
    while (true) {
      if (pos_ >= src_.size()) return error("unterminated string starting", start);
      char c = src_[pos_++];
      if (c == quote) break;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= src_.size()) return error("unterminated string starting", start);
      char e = src_[pos_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case '0': out += '\0'; break;
        case '\\': case '\'': case '"': case '/': out += e; break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(&cp)) return error("invalid \\u escape", pos_ - 2);
          if (cp >= 0xD800 && cp <= 0xDBFF && pos_ + 1 < src_.size() && src_[pos_] == '\\' &&
              src_[pos_ + 1] == 'u') {
            size_t save = pos_;
            pos_ += 2;
            uint32_t low = 0;
            if (hex4(&low) && low >= 0xDC00 && low <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            } else {
              pos_ = save;
            }
          }
          if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;  // lone surrogate
          append_utf8(out, cp);
          break;
        }
        default:  // unknown escapes are kept verbatim, as in Python
          out += '\\';
          out += e;
      }
    }
    t->kind = Tok::kString;
    t->text = std::move(out);
    return {};
  }

  bool hex4(uint32_t* cp) {
    if (pos_ + 4 > src_.size()) return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char h = src_[pos_ + i];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= h - '0';
      else if (h >= 'a' && h <= 'f') v |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') v |= h - 'A' + 10;
      else return false;
    }
    pos_ += 4;
    *cp = v;
    return true;
  }

  Status punct(Token* t) {
    size_t start = pos_;
    char c = src_[pos_];
    char n = pos_ + 1 < src_.size() ? src_[pos_ + 1] : '\0';
    auto one = [&](Tok k) { t->kind = k; pos_ += 1; };
    auto two = [&](Tok k) { t->kind = k; pos_ += 2; };
    switch (c) {
      case '(': one(Tok::kLParen); break;
      case ')': one(Tok::kRParen); break;
      case '[': one(Tok::kLBracket); break;
      case ']': one(Tok::kRBracket); break;
      case '{': one(Tok::kLBrace); ++brace_depth_; break;
      case '}': one(Tok::kRBrace); if (brace_depth_ > 0) --brace_depth_; break;
      case ',': one(Tok::kComma); break;
      case '.': one(Tok::kDot); break;
      case ':': one(Tok::kColon); break;
      case '|': one(Tok::kPipe); break;
      case '+': one(Tok::kPlus); break;
      case '-': one(Tok::kMinus); break;
      case '*': one(Tok::kStar); break;
      case '%': one(Tok::kPercent); break;
      case '~': one(Tok::kTilde); break;
      case '/': if (n == '/') two(Tok::kSlashSlash); else one(Tok::kSlash); break;
      case '<': if (n == '=') two(Tok::kLe); else one(Tok::kLt); break;
      case '>': if (n == '=') two(Tok::kGe); else one(Tok::kGt); break;
      case '=':
        if (n != '=') return error("unexpected '='; did you mean '=='?", start);
        two(Tok::kEq);
        break;
      case '!':
        if (n != '=') return error("unexpected '!'; use 'not' for negation", start);
        two(Tok::kNe);
        break;
      default:
        return error("unexpected character " + quote_char(c), start);
    }
    return {};
  }

  std::string_view src_;
  size_t pos_;
  bool in_template_;
  int brace_depth_ = 0;
};

std::string describe(const Token& t) {
  switch (t.kind) {
    case Tok::kEnd: return "end of expression";
    case Tok::kTemplateEnd: return "'}}'";
    case Tok::kInt: return "number " + std::to_string(t.int_value);
    case Tok::kFloat: return "number";
    case Tok::kString: return "string";
    case Tok::kName: return "'" + t.text + "'";
    case Tok::kLParen: return "'('";
    case Tok::kRParen: return "')'";
    case Tok::kLBracket: return "'['";
    case Tok::kRBracket: return "']'";
    case Tok::kLBrace: return "'{'";
    case Tok::kRBrace: return "'}'";
    case Tok::kComma: return "','";
    case Tok::kDot: return "'.'";
    case Tok::kColon: return "':'";
    case Tok::kPipe: return "'|'";
    case Tok::kPlus: return "'+'";
    case Tok::kMinus: return "'-'";
    case Tok::kStar: return "'*'";
    case Tok::kSlash: return "'/'";
    case Tok::kSlashSlash: return "'//'";
    case Tok::kPercent: return "'%'";
    case Tok::kTilde: return "'~'";
    case Tok::kEq: return "'=='";
    case Tok::kNe: return "'!='";
    case Tok::kLt: return "'<'";
    case Tok::kLe: return "'<='";
    case Tok::kGt: return "'>'";
    case Tok::kGe: return "'>='";
  }
  return "token";
}

bool is_keyword(const std::string& s) {
  return s == "and" || s == "or" || s == "not" || s == "in" || s == "is" || s == "if" ||
         s == "else";
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  Result<NodePtr> parse_all(Tok terminator) {
    NodePtr n;
    if (!expression(&n)) return error_;
    if (cur().kind != terminator) {
      return fail(cur(), std::string("unexpected ") + describe(cur()) +
                              (terminator == Tok::kTemplateEnd ? " (expected '}}')" : ""));
    }
    return n;
  }

 private:
  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(size_t ahead) const {
    return toks_[std::min(pos_ + ahead, toks_.size() - 1)];
  }
  bool at_name(const char* s) const { return cur().kind == Tok::kName && cur().text == s; }
  void advance() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }

  Error fail(const Token& t, std::string message) {
    error_ = make_error(Errc::kValidation, message + " at column " + std::to_string(t.column));
    return error_;
  }
  bool fail_unexpected(const char* expected) {
    std::string m = "unexpected " + describe(cur());
    if (expected != nullptr) m += std::string(" (expected ") + expected + ")";
    fail(cur(), m);
    return false;
  }
  bool expect(Tok kind, const char* what) {
    if (cur().kind != kind) return fail_unexpected(what);
    advance();
    return true;
  }

  NodePtr make(NodeKind kind, int column) {
    auto n = std::make_unique<Node>();
    n->kind = kind;
    n->column = column;
    return n;
  }
  // Records the node's height; fails if the tree would be deeper than the evaluator allows.
  bool finish(Node* n) {
    int h = 0;
    for (const auto& k : n->kids) {
      if (k) h = std::max(h, k->height);
    }
    for (const auto& s : n->segments) {
      if (s.expr) h = std::max(h, s.expr->height);
    }
    n->height = h + 1;
    if (n->height > kMaxDepth) {
      error_ = make_error(Errc::kValidation, "expression nested too deeply (limit " +
                                                 std::to_string(kMaxDepth) + ") at column " +
                                                 std::to_string(n->column));
      return false;
    }
    return true;
  }
  bool enter() {
    if (++depth_ > kMaxDepth) {
      fail(cur(), "expression nested too deeply (limit " + std::to_string(kMaxDepth) + ")");
      return false;
    }
    return true;
  }

  // expression := or ['if' or ['else' expression]]
  bool expression(NodePtr* out) {
    if (!enter()) return false;
    NodePtr value;
    if (!logical_or(&value)) return false;
    if (at_name("if")) {
      auto n = make(NodeKind::kCond, cur().column);
      advance();
      NodePtr cond;
      if (!logical_or(&cond)) return false;
      n->kids.push_back(std::move(cond));
      n->kids.push_back(std::move(value));
      if (at_name("else")) {
        advance();
        NodePtr other;
        if (!expression(&other)) return false;
        n->kids.push_back(std::move(other));
      }
      if (!finish(n.get())) return false;
      value = std::move(n);
    }
    *out = std::move(value);
    --depth_;
    return true;
  }

  bool logical_or(NodePtr* out) {
    if (!logical_and(out)) return false;
    while (at_name("or")) {
      auto n = make(NodeKind::kOr, cur().column);
      advance();
      NodePtr rhs;
      if (!logical_and(&rhs)) return false;
      n->kids.push_back(std::move(*out));
      n->kids.push_back(std::move(rhs));
      if (!finish(n.get())) return false;
      *out = std::move(n);
    }
    return true;
  }

  bool logical_and(NodePtr* out) {
    if (!logical_not(out)) return false;
    while (at_name("and")) {
      auto n = make(NodeKind::kAnd, cur().column);
      advance();
      NodePtr rhs;
      if (!logical_not(&rhs)) return false;
      n->kids.push_back(std::move(*out));
      n->kids.push_back(std::move(rhs));
      if (!finish(n.get())) return false;
      *out = std::move(n);
    }
    return true;
  }

  bool logical_not(NodePtr* out) {
    if (at_name("not")) {
      if (!enter()) return false;
      auto n = make(NodeKind::kUnary, cur().column);
      n->op = Op::kNot;
      advance();
      NodePtr operand;
      if (!logical_not(&operand)) return false;
      n->kids.push_back(std::move(operand));
      if (!finish(n.get())) return false;
      *out = std::move(n);
      --depth_;
      return true;
    }
    return compare(out);
  }

  bool compare_op(Op* op, int* width) {
    *width = 1;
    switch (cur().kind) {
      case Tok::kEq: *op = Op::kEq; return true;
      case Tok::kNe: *op = Op::kNe; return true;
      case Tok::kLt: *op = Op::kLt; return true;
      case Tok::kLe: *op = Op::kLe; return true;
      case Tok::kGt: *op = Op::kGt; return true;
      case Tok::kGe: *op = Op::kGe; return true;
      case Tok::kName:
        if (cur().text == "in") {
          *op = Op::kIn;
          return true;
        }
        if (cur().text == "not" && peek(1).kind == Tok::kName && peek(1).text == "in") {
          *op = Op::kNotIn;
          *width = 2;
          return true;
        }
        return false;
      default:
        return false;
    }
  }

  bool compare(NodePtr* out) {
    NodePtr first;
    if (!concat(&first)) return false;
    Op op;
    int width;
    if (!compare_op(&op, &width)) {
      *out = std::move(first);
      return true;
    }
    auto n = make(NodeKind::kCompare, cur().column);
    n->kids.push_back(std::move(first));
    while (compare_op(&op, &width)) {
      for (int i = 0; i < width; ++i) advance();
      NodePtr rhs;
      if (!concat(&rhs)) return false;
      n->ops.push_back(op);
      n->kids.push_back(std::move(rhs));
    }
    if (!finish(n.get())) return false;
    *out = std::move(n);
    return true;
  }

  bool binary_level(NodePtr* out, bool (Parser::*next)(NodePtr*),
                    bool (*match)(Tok, Op*)) {
    if (!(this->*next)(out)) return false;
    Op op;
    while (match(cur().kind, &op)) {
      auto n = make(NodeKind::kBinary, cur().column);
      n->op = op;
      advance();
      NodePtr rhs;
      if (!(this->*next)(&rhs)) return false;
      n->kids.push_back(std::move(*out));
      n->kids.push_back(std::move(rhs));
      if (!finish(n.get())) return false;
      *out = std::move(n);
    }
    return true;
  }

  static bool match_concat(Tok t, Op* op) {
    *op = Op::kConcat;
    return t == Tok::kTilde;
  }
  static bool match_additive(Tok t, Op* op) {
    if (t == Tok::kPlus) *op = Op::kAdd;
    else if (t == Tok::kMinus) *op = Op::kSub;
    else return false;
    return true;
  }
  static bool match_term(Tok t, Op* op) {
    switch (t) {
      case Tok::kStar: *op = Op::kMul; return true;
      case Tok::kSlash: *op = Op::kDiv; return true;
      case Tok::kSlashSlash: *op = Op::kFloorDiv; return true;
      case Tok::kPercent: *op = Op::kMod; return true;
      default: return false;
    }
  }

  bool concat(NodePtr* out) { return binary_level(out, &Parser::additive, &match_concat); }
  bool additive(NodePtr* out) { return binary_level(out, &Parser::term, &match_additive); }
  bool term(NodePtr* out) { return binary_level(out, &Parser::unary_filtered, &match_term); }

  bool unary_filtered(NodePtr* out) { return unary(out, true); }

  // unary := ('-' | '+') unary | primary postfix*; then `|filter` / `is test` when with_filters.
  bool unary(NodePtr* out, bool with_filters) {
    if (!enter()) return false;
    if (cur().kind == Tok::kMinus || cur().kind == Tok::kPlus) {
      bool neg = cur().kind == Tok::kMinus;
      int column = cur().column;
      advance();
      NodePtr operand;
      if (!unary(&operand, false)) return false;
      if (operand->kind == NodeKind::kLiteral && operand->literal.is_number()) {
        // Fold `-3` so that `a[-1]` is a constant index and list literals stay constant.
        Json& lit = operand->literal;
        if (neg) {
          if (lit.is_number_float()) {
            lit = -lit.get<double>();
          } else if (lit.get<int64_t>() == std::numeric_limits<int64_t>::min()) {
            lit = -static_cast<double>(lit.get<int64_t>());
          } else {
            lit = -lit.get<int64_t>();
          }
        }
        operand->column = column;
        *out = std::move(operand);
      } else {
        auto n = make(NodeKind::kUnary, column);
        n->op = neg ? Op::kNeg : Op::kPos;
        n->kids.push_back(std::move(operand));
        if (!finish(n.get())) return false;
        *out = std::move(n);
      }
    } else {
      if (!primary(out)) return false;
      if (!postfix(out)) return false;
    }
    if (with_filters && !filters(out)) return false;
    --depth_;
    return true;
  }

  bool primary(NodePtr* out) {
    const Token& t = cur();
    switch (t.kind) {
      case Tok::kInt:
      case Tok::kFloat:
      case Tok::kString: {
        auto n = make(NodeKind::kLiteral, t.column);
        if (t.kind == Tok::kInt) n->literal = t.int_value;
        else if (t.kind == Tok::kFloat) n->literal = t.float_value;
        else n->literal = t.text;
        advance();
        *out = std::move(n);
        return true;
      }
      case Tok::kName:
        return name(out);
      case Tok::kLParen: {
        advance();
        if (!expression(out)) return false;
        return expect(Tok::kRParen, "')'");
      }
      case Tok::kLBracket:
        return list(out);
      case Tok::kLBrace:
        return object(out);
      default:
        return fail_unexpected(nullptr);
    }
  }

  bool name(NodePtr* out) {
    const Token& t = cur();
    const std::string& s = t.text;
    auto literal = [&](Json v) {
      auto n = make(NodeKind::kLiteral, t.column);
      n->literal = std::move(v);
      advance();
      *out = std::move(n);
      return true;
    };
    if (s == "true" || s == "True") return literal(true);
    if (s == "false" || s == "False") return literal(false);
    if (s == "null" || s == "none" || s == "None") return literal(nullptr);
    if (is_keyword(s)) return fail_unexpected(nullptr);
    if (peek(1).kind == Tok::kLParen) {
      auto n = make(NodeKind::kCall, t.column);
      n->name = s;
      advance();
      advance();
      if (!arguments(n.get())) return false;
      if (!finish(n.get())) return false;
      *out = std::move(n);
      return true;
    }
    auto n = make(NodeKind::kPath, t.column);
    n->name = s;
    advance();
    *out = std::move(n);
    return true;
  }

  // Arguments after '(' up to and including ')'; appended to n->kids.
  bool arguments(Node* n) {
    while (cur().kind != Tok::kRParen) {
      NodePtr arg;
      if (!expression(&arg)) return false;
      n->kids.push_back(std::move(arg));
      if (cur().kind == Tok::kComma) {
        advance();
      } else if (cur().kind != Tok::kRParen) {
        return fail_unexpected("',' or ')'");
      }
    }
    advance();
    return true;
  }

  static bool all_literal(const std::vector<NodePtr>& kids) {
    return std::all_of(kids.begin(), kids.end(),
                       [](const NodePtr& k) { return k->kind == NodeKind::kLiteral; });
  }

  bool list(NodePtr* out) {
    auto n = make(NodeKind::kList, cur().column);
    advance();
    while (cur().kind != Tok::kRBracket) {
      NodePtr item;
      if (!expression(&item)) return false;
      n->kids.push_back(std::move(item));
      if (cur().kind == Tok::kComma) {
        advance();
      } else if (cur().kind != Tok::kRBracket) {
        return fail_unexpected("',' or ']'");
      }
    }
    advance();
    if (all_literal(n->kids)) {  // constant list: build it once, here
      Json arr = Json::array();
      for (auto& k : n->kids) arr.push_back(std::move(k->literal));
      n->kids.clear();
      n->kind = NodeKind::kLiteral;
      n->literal = std::move(arr);
    }
    if (!finish(n.get())) return false;
    *out = std::move(n);
    return true;
  }

  bool object(NodePtr* out) {
    auto n = make(NodeKind::kObject, cur().column);
    advance();
    while (cur().kind != Tok::kRBrace) {
      auto key = make(NodeKind::kLiteral, cur().column);
      if (cur().kind == Tok::kString || (cur().kind == Tok::kName && !is_keyword(cur().text))) {
        key->literal = cur().text;
      } else {
        return fail_unexpected("a string or name as object key");
      }
      advance();
      if (!expect(Tok::kColon, "':'")) return false;
      NodePtr value;
      if (!expression(&value)) return false;
      n->kids.push_back(std::move(key));
      n->kids.push_back(std::move(value));
      if (cur().kind == Tok::kComma) {
        advance();
      } else if (cur().kind != Tok::kRBrace) {
        return fail_unexpected("',' or '}'");
      }
    }
    advance();
    if (all_literal(n->kids)) {
      Json obj = Json::object();
      for (size_t i = 0; i + 1 < n->kids.size(); i += 2) {
        obj[n->kids[i]->literal.get<std::string>()] = std::move(n->kids[i + 1]->literal);
      }
      n->kids.clear();
      n->kind = NodeKind::kLiteral;
      n->literal = std::move(obj);
    }
    if (!finish(n.get())) return false;
    *out = std::move(n);
    return true;
  }

  // Turns `base` into a path node (reusing it when it already is one) and returns it.
  Node* as_path(NodePtr* base) {
    if ((*base)->kind == NodeKind::kPath) return base->get();
    auto n = make(NodeKind::kPath, (*base)->column);
    n->kids.push_back(std::move(*base));
    *base = std::move(n);
    return base->get();
  }

  bool postfix(NodePtr* out) {
    while (true) {
      if (cur().kind == Tok::kDot) {
        advance();
        Segment seg;
        if (cur().kind == Tok::kName) {
          seg.kind = Segment::Kind::kKey;
          seg.key = cur().text;
        } else if (cur().kind == Tok::kInt) {
          seg.kind = Segment::Kind::kIndex;
          seg.index = cur().int_value;
        } else {
          return fail_unexpected("a name after '.'");
        }
        advance();
        as_path(out)->segments.push_back(std::move(seg));
      } else if (cur().kind == Tok::kLBracket) {
        advance();
        NodePtr index;
        if (!expression(&index)) return false;
        if (!expect(Tok::kRBracket, "']'")) return false;
        Segment seg;
        if (index->kind == NodeKind::kLiteral && index->literal.is_string()) {
          seg.kind = Segment::Kind::kKey;
          seg.key = index->literal.get<std::string>();
        } else if (index->kind == NodeKind::kLiteral && index->literal.is_number_integer()) {
          seg.kind = Segment::Kind::kIndex;
          seg.index = index->literal.get<int64_t>();
        } else {
          seg.kind = Segment::Kind::kDynamic;
          seg.expr = std::move(index);
        }
        as_path(out)->segments.push_back(std::move(seg));
      } else if (cur().kind == Tok::kLParen) {
        fail(cur(), "unexpected '(': only plain function names can be called");
        return false;
      } else {
        break;
      }
      if (!finish(out->get())) return false;
    }
    return true;
  }

  bool filters(NodePtr* out) {
    while (true) {
      if (cur().kind == Tok::kPipe) {
        advance();
        if (cur().kind != Tok::kName) return fail_unexpected("a filter name after '|'");
        const Token& t = cur();
        auto info = std::find_if(kFilters.begin(), kFilters.end(),
                                 [&](const FilterInfo& f) { return t.text == f.name; });
        if (info == kFilters.end()) {
          fail(t, "unknown filter '" + t.text + "'");
          error_.message += suggestion(t.text, kFilters);
          return false;
        }
        auto n = make(NodeKind::kFilter, t.column);
        n->filter = info->filter;
        n->name = info->name;
        n->kids.push_back(std::move(*out));
        advance();
        if (cur().kind == Tok::kLParen) {
          advance();
          if (!arguments(n.get())) return false;
        }
        int nargs = static_cast<int>(n->kids.size()) - 1;
        if (nargs < info->min_args || nargs > info->max_args) {
          std::string want = info->min_args == info->max_args
                                 ? std::to_string(info->min_args)
                                 : std::to_string(info->min_args) + " to " +
                                       std::to_string(info->max_args);
          fail(t, "filter '" + n->name + "' takes " + want + " argument" +
                      (info->max_args == 1 ? "" : "s") + ", got " + std::to_string(nargs));
          return false;
        }
        if (!finish(n.get())) return false;
        *out = std::move(n);
      } else if (at_name("is")) {
        auto n = make(NodeKind::kTest, cur().column);
        advance();
        if (at_name("not")) {
          n->negated = true;
          advance();
        }
        if (cur().kind != Tok::kName) return fail_unexpected("a test name after 'is'");
        const Token& t = cur();
        auto info = std::find_if(kTests.begin(), kTests.end(),
                                 [&](const TestInfo& x) { return t.text == x.name; });
        if (info == kTests.end()) {
          fail(t, "unknown test '" + t.text + "'");
          error_.message += suggestion(t.text, kTests);
          return false;
        }
        n->test = info->test;
        n->name = info->name;
        n->kids.push_back(std::move(*out));
        advance();
        if (!finish(n.get())) return false;
        *out = std::move(n);
      } else {
        return true;
      }
    }
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  Error error_;
};

}  // namespace

Result<NodePtr> parse_expression(std::string_view source, size_t begin, bool in_template,
                                 size_t* end) {
  std::vector<Token> tokens;
  size_t stop = 0;
  if (Status s = Lexer(source, begin, in_template).run(&tokens, &stop); !s.ok()) return s.error();
  Parser parser(std::move(tokens));
  auto parsed = parser.parse_all(in_template ? Tok::kTemplateEnd : Tok::kEnd);
  if (parsed.ok() && end != nullptr) *end = stop;
  return parsed;
}

}  // namespace attune::expr::internal
