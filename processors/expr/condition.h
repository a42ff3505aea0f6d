// Rule conditions (API.md §10.1): the forms a rule's `conditions` may take, compiled once and
// matched against each event.
#pragma once

#include <memory>

#include "processors/expr/expr.h"

namespace attune::expr {

// A compiled rule condition. Accepted forms:
//   null, {}, []                         always match
//   {"expression": "<expr>"}             truthy ⇒ match; the expression may be wrapped in {{ }};
//                                        a blank expression always matches
//   [{"field", "operator", "value"}...]  every criterion must hold; `field` is a dotted path inside
//                                        event.payload ("a.b.0"); a null or missing payload matches
// Array-form operators (StackStorm's set plus Attune's):
//   equals not_equals iequals            equality (numbers by value; iequals: ASCII case-insensitive)
//   contains ncontains icontains         substring, array element or object key
//   startswith endswith                  strings
//   regex                                ECMAScript regex anchored at the start of the field (like
//                                        Python's re.match); compiled here; subjects over 8 KiB are
//                                        an evaluation error (std::regex recurses per character)
//   lt lte gt gte                        field <op> value; numbers or strings, else an error
//   in nin                               field is an element of value (array) or a substring of it
//   exists nexists                       field present (value not needed)
//   timediff_lt timediff_gt              field is an RFC 3339 time; (now − field) in seconds <op>
//                                        value; now = `system.timestamp` (epoch ms or RFC 3339)
//                                        when bound, else the scope's clock
// A missing field fails every criterion except not_equals, ncontains, nin and nexists, which hold.
// A present field of the wrong type (e.g. `lt` on an object) is an evaluation error.
//
// Immutable after compile; copies share the compiled form; safe to match from many threads.
class Condition {
 public:
  // Errors name the offending part: "conditions[1].operator: unknown operator 'equal'".
  static Result<Condition> compile(const Json& conditions);

  // Whether the event bound in `scope` as "event" (or "trigger") matches. An evaluation error is
  // returned as an error; the caller counts it as no match.
  Result<bool> matches(const Scope& scope) const;

  // True for the null/{}/[] forms.
  bool always() const;

  struct Impl;

 private:
  explicit Condition(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace attune::expr
