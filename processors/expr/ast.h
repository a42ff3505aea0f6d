// Internal: the compiled form of an expression (an immutable AST) and the evaluator's value type.
// Not part of the public API; include processors/expr/expr.h instead.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "topology/core/record.h"

namespace attune::expr::internal {

// Deepest AST the compiler accepts. The evaluator recurses once per level, so this bounds its stack
// use no matter what the input looks like (a long `a+a+a+...` chain is deep even though it parses
// iteratively).
inline constexpr int kMaxDepth = 200;

// Largest string or array an operator or filter may produce; keeps `replace` chains and the like
// from exhausting memory.
inline constexpr size_t kMaxResultSize = size_t{16} << 20;

enum class NodeKind : uint8_t {
  kLiteral,   // literal_
  kPath,      // root name (name) or base expression (kids[0]) followed by segments
  kList,      // kids = elements (non-constant lists only; constant ones fold to kLiteral)
  kObject,    // kids = alternating key, value expressions
  kUnary,     // op, kids[0]
  kBinary,    // op, kids[0], kids[1] (arithmetic, ~, in, not in)
  kCompare,   // ops[i] between kids[i] and kids[i + 1] (Python-style chaining)
  kAnd,       // kids[0] and kids[1]
  kOr,        // kids[0] or kids[1]
  kCond,      // kids[1] if kids[0] else kids[2] (kids[2] may be absent → undefined)
  kFilter,    // filter, kids[0] = operand, kids[1..] = arguments
  kTest,      // test, negated, kids[0] = operand
  kCall,      // name, kids = arguments
};

enum class Op : uint8_t {
  kNeg, kPos, kNot,                                  // unary
  kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kConcat,  // arithmetic, ~
  kIn, kNotIn,
  kEq, kNe, kLt, kLe, kGt, kGe,                      // comparisons
};

enum class Filter : uint8_t {
  kDefault, kUpper, kLower, kTrim, kLength, kInt, kFloat, kString, kJson, kJoin, kFirst, kLast,
  kKeys, kValues, kReplace, kRound, kAbs, kBool, kList, kUnique, kSort, kCapitalize,
};

enum class Test : uint8_t {
  kDefined, kUndefined, kNone, kString, kNumber, kInteger, kFloat, kBoolean, kMapping,
  kSequence, kEven, kOdd,
};

struct Node;
using NodePtr = std::unique_ptr<Node>;

// One step of a path: `.name` / `['name']` (key), `[3]` / `.3` (index) or `[expr]` (dynamic).
struct Segment {
  enum class Kind : uint8_t { kKey, kIndex, kDynamic };
  Kind kind = Kind::kKey;
  std::string key;
  int64_t index = 0;
  NodePtr expr;
};

struct Node {
  NodeKind kind = NodeKind::kLiteral;
  Op op = Op::kAdd;
  Filter filter = Filter::kDefault;
  Test test = Test::kDefined;
  bool negated = false;
  int column = 0;  // 1-based column of the token that introduced this node
  int height = 1;  // 1 + height of the tallest child; bounded by kMaxDepth
  Json literal;
  std::string name;
  std::vector<NodePtr> kids;
  std::vector<Segment> segments;
  std::vector<Op> ops;  // kCompare
};

// A value during evaluation: undefined, a borrowed pointer into the scope or a literal (the hot path
// for paths and constants — no copies), or an owned Json computed by an operator.
class Value {
 public:
  Value() = default;
  static Value borrowed(const Json* j) {
    Value v;
    if (j != nullptr) {
      v.kind_ = Kind::kBorrowed;
      v.ref_ = j;
    }
    return v;
  }
  // Booleans point at shared constants: comparisons and logic never allocate or own JSON.
  static Value boolean(bool b) {
    static const Json kTrue(true);
    static const Json kFalse(false);
    return borrowed(b ? &kTrue : &kFalse);
  }
  static Value owned(Json j) {
    Value v;
    v.kind_ = Kind::kOwned;
    v.owned_ = std::move(j);
    return v;
  }

  bool undefined() const { return kind_ == Kind::kUndefined; }
  // True when json() points into the scope or the compiled tree (and so outlives this Value).
  bool is_borrowed() const { return kind_ == Kind::kBorrowed; }
  // The JSON value; null for undefined.
  const Json& json() const { return kind_ == Kind::kBorrowed ? *ref_ : owned_; }
  // Moves an owned value out, copies a borrowed one; undefined becomes null.
  Json take() && { return kind_ == Kind::kBorrowed ? *ref_ : std::move(owned_); }

 private:
  enum class Kind : uint8_t { kUndefined, kBorrowed, kOwned };
  Kind kind_ = Kind::kUndefined;
  const Json* ref_ = nullptr;
  Json owned_;
};

}  // namespace attune::expr::internal
