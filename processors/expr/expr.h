// The criteria and template language (API.md §10.3): Jinja-style expressions over JSON values,
// compiled once to an immutable AST and evaluated many times against a Scope.
//
// Language summary (see tests/unit/expr/ for the full table of cases):
//   literals   1  -2  1.5  2e3  'a'  "b\n"  true/True  false/False  null/none/None  [1, 2]  {k: 1, 'x y': 2}
//   paths      a.b  a[0]  a[-1]  a.0  a['k']  a[expr] — a missing member, an out-of-range index, or any
//              step from undefined/null is *undefined* (a distinct value, never an error)
//   operators  x if c else y;  or, and (short-circuit, give booleans);  not;
//              == != < <= > >= in, not in (chained like Python: a < b < c);  ~ (string concat);
//              + - (numbers; + also joins strings/arrays);  * / // %;  unary - +
//              ordering across types is an error; == across types is false; int and float compare by
//              value; / always gives a float; ÷0 is an error; integer overflow falls back to float
//   filters    x | name  or  x | name(args): default/d(v[, if_falsy]) upper lower trim capitalize
//              length/count int([fallback]) float([fallback]) string json/tojson([indent]) join([sep])
//              first last keys values replace(a, b) round([digits]) abs bool list unique sort([reverse])
//   tests      x is [not] defined | undefined | none | string | number | integer | float | boolean |
//              mapping (object) | sequence (array) | even | odd
//   calls      name(args) — resolved through the Scope's function table at evaluation time
//   truthiness null, false, 0, 0.0, "", [], {} and undefined are falsy; everything else is truthy
// Text conversion (mixed templates, `~`, `string`, `join`): strings as-is, numbers/booleans as JSON,
// null and undefined as "", arrays/objects as compact JSON.
//
// Errors are Result errors (Errc::kValidation) whose message ends in "at column N" (1-based byte
// column in the compiled source): compile errors such as "unexpected ')' at column 17", and evaluation
// errors such as "'<' not supported between string and number at column 9". Nothing here throws on
// bad input. Compiled objects are immutable and safe to evaluate from many threads at once; copies
// share the compiled tree.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "topology/core/clock.h"
#include "topology/core/record.h"
#include "topology/core/result.h"

namespace attune::expr {

namespace internal {
struct Node;
struct ParamNode;
}  // namespace internal

// A function callable from expressions, e.g. a workflow's `succeeded()`. Arguments that evaluate to
// undefined are passed as null.
using Function = std::function<Result<Json>(std::span<const Json>)>;

// Name → value bindings for one evaluation. Cheap to build per evaluation (a few pointers in a small
// vector); it does not own the values: every bound pointer must outlive the evaluations using it.
// A scope may have a parent, consulted for names it does not bind itself (e.g. a per-item scope on
// top of a per-workflow one). Not thread-safe to mutate; const use from many threads is fine.
class Scope {
 public:
  Scope() = default;
  explicit Scope(const Scope* parent) : parent_(parent) {}

  // Binds a root name such as "event", "trigger", "config", "system", "item". A null pointer binds
  // the name as undefined. Rebinding a name replaces it.
  void bind(std::string name, const Json* value);
  void bind_function(std::string name, Function fn);
  // The clock used by time-based condition operators when no `system.timestamp` is bound
  // (default: the system clock). Must outlive the scope's use.
  void set_clock(const Clock* clock) { clock_ = clock; }

  // nullptr when unbound here and in the parents (or bound as undefined).
  const Json* find(std::string_view name) const;
  const Function* find_function(std::string_view name) const;
  const Clock& clock() const;

 private:
  const Scope* parent_ = nullptr;
  const Clock* clock_ = nullptr;
  std::vector<std::pair<std::string, const Json*>> values_;
  std::vector<std::pair<std::string, Function>> functions_;
};

// One compiled expression.
class Expression {
 public:
  // Compiles `source`; an optional surrounding "{{ ... }}" (with whitespace around it) is accepted.
  static Result<Expression> compile(std::string_view source);

  // The value; undefined becomes null.
  Result<Json> evaluate(const Scope& scope) const;
  // The value's truthiness.
  Result<bool> test(const Scope& scope) const;
  // Like evaluate, but reports an undefined result as `*defined = false` (value null).
  Result<Json> evaluate(const Scope& scope, bool* defined) const;

 private:
  friend class Template;
  explicit Expression(std::shared_ptr<const internal::Node> root) : root_(std::move(root)) {}
  std::shared_ptr<const internal::Node> root_;  // immutable; shared by copies
};

// A string with `{{ expr }}` parts.
class Template {
 public:
  static Result<Template> compile(std::string_view text);

  // False if the text has no `{{` at all (render then returns the text unchanged).
  bool is_template() const { return !exprs_.empty(); }
  // Typing rules: a text that is exactly one `{{ expr }}` (nothing around it, not even spaces)
  // keeps the value's JSON type and renders undefined as null; any other text renders to a string
  // using the text conversion above (undefined and null → "").
  Result<Json> render(const Scope& scope) const;

 private:
  Template() = default;
  std::vector<std::string> texts_;  // texts_.size() == exprs_.size() + 1
  std::vector<Expression> exprs_;
};

// A JSON document (e.g. a rule's action_params or a workflow task's input) whose strings are
// templates, compiled once. Object keys are not templated. Strings without `{{` and non-string
// values are copied through unchanged.
class CompiledParams {
 public:
  // `root` names the document in error messages: "action_params.foo[2]: unexpected ')' at column 4".
  static Result<CompiledParams> compile(const Json& params,
                                        std::string_view root = "action_params");
  // Renders every template; the first error is returned with the JSON path prefixed.
  Result<Json> render(const Scope& scope) const;

 private:
  CompiledParams() = default;
  std::shared_ptr<const internal::ParamNode> root_;
};

}  // namespace attune::expr
