// Property/fuzz test: random grammar-generated and mutated inputs through compile + evaluate (and
// templates, params, conditions) with no crash, hang or exception; results are deterministic and
// every error carries a column. Iterations: ATTUNE_FUZZ_ITERATIONS (default 20000); seed:
// ATTUNE_FUZZ_SEED (default random, printed). See tests/bench/README.md for the 1M-iteration
// ASan/UBSan run.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "processors/expr/condition.h"
#include "processors/expr/expr.h"

namespace attune::expr {
namespace {

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 10);
}

const std::vector<std::string>& corpus() {
  static const std::vector<std::string> c = {
      "trigger.payload.priority >= 7 and trigger.payload.env in ['prod','staging']",
      "event.payload.items[0].name | default('x') | upper",
      "{{ event.payload.count * 2 + 1 }}",
      "'a' ~ event.id ~ \"b\\n\\u00e9\"",
      "[1, 2.5, 'x', none, true, {k: [1, {z: null}]}][-1].k[1].z is none",
      "event.payload.tags | join(', ') | replace(',', ';') | length",
      "x if event.payload.flag else y | default(0)",
      "not (1 < 2 < 3) or 'ell' in 'hello' and 4 % 3 == 1 // 1",
      "succeeded() and result().code == 0 or failed(1, 'a')",
      "event.payload.obj | keys | sort(true) | first",
      "{{ {'a': {'b': {'c': 1}}} }}",
      "event.payload.n | int(3) + ('4.5' | float) - -2 / 3",
      "event.payload.list | unique | sort | last is number",
      "event.payload[event.payload.key]['x'][0 + 1]",
      "'%s' * 3 ~ (7 | string) ~ ([1] | json(2)) ~ (x | tojson)",
      "-event.payload.big | abs | round(2) | bool | list",
      "event.payload.name | trim | lower | capitalize is string",
  };
  return c;
}

const std::vector<std::string>& fragments() {
  static const std::vector<std::string> f = {
      "(", ")", "[", "]", "{", "}", "{{", "}}", ",", ".", ":", "|", "+", "-", "*", "/", "//",
      "%", "~", "==", "!=", "<", "<=", ">", ">=", "=", "!", "'", "\"", "\\", "\\u", "\\ud800",
      " and ", " or ", " not ", " in ", " is ", " if ", " else ", "not in", "is not defined",
      "true", "None", "null", "0", "-1", "9223372036854775807", "9223372036854775808", "1e308",
      "1e999", "0.5", "event", "trigger", "payload", "x", "y", "item", "| default(1)",
      "| length", "| int", "| sort", "| round(20)", "| json(99)", "| replace('', 'x')",
      "| join", "| first", "| unique", "| list", "| frob", "is even", "succeeded()", "f(",
      "\xff", "\xc3\xa9", "\x00", "\t", "\n", "'\xe2\x82'", "[[[[", "]]]]", "((((",
  };
  return f;
}

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  bool chance(int percent) { return static_cast<int>(pick(100)) < percent; }

  // A random, mostly well-formed expression of bounded depth.
  std::string expr(int depth) {
    if (depth <= 0 || chance(25)) return atom();
    switch (pick(9)) {
      case 0: return expr(depth - 1) + binop() + expr(depth - 1);
      case 1: return "(" + expr(depth - 1) + ")";
      case 2: return (chance(50) ? "not " : "-") + expr(depth - 1);
      case 3: return expr(depth - 1) + " | " + filter(depth - 1);
      case 4: return expr(depth - 1) + " is " + (chance(50) ? "not " : "") + test();
      case 5: return "[" + expr(depth - 1) + ", " + expr(depth - 1) + "]";
      case 6: return "{a: " + expr(depth - 1) + ", 'b': " + expr(depth - 1) + "}";
      case 7: return expr(depth - 1) + " if " + expr(depth - 1) + " else " + expr(depth - 1);
      default: return path(depth - 1);
    }
  }

  std::string atom() {
    static const std::vector<std::string> atoms = {
        "0", "1", "-3", "2.5", "1e3", "'s'", "\"Hello\"", "''", "true", "False", "none",
        "[]", "{}", "event.payload.count", "event.payload.name", "event.payload.tags",
        "event.payload.obj", "event.payload.n", "event.payload.missing", "config.x", "undefined_name",
        "event.payload.big", "event.payload.f", "succeeded()", "echo(1, 'a')", "boom()",
    };
    return atoms[pick(atoms.size())];
  }

  std::string path(int depth) {
    std::string p = chance(50) ? "event.payload" : "trigger";
    int steps = static_cast<int>(pick(4));
    for (int i = 0; i < steps; ++i) {
      switch (pick(4)) {
        case 0: p += ".tags"; break;
        case 1: p += "[" + std::to_string(static_cast<int>(pick(5)) - 2) + "]"; break;
        case 2: p += "['obj']"; break;
        default: p += "[" + expr(depth) + "]";
      }
    }
    return p;
  }

  std::string binop() {
    static const std::vector<std::string> ops = {
        " + ", " - ", " * ", " / ", " // ", " % ", " ~ ", " == ", " != ", " < ", " <= ", " > ",
        " >= ", " and ", " or ", " in ", " not in ",
    };
    return ops[pick(ops.size())];
  }

  std::string filter(int depth) {
    static const std::vector<std::string> names = {
        "upper", "lower", "trim", "length", "int", "float", "string", "json", "tojson", "first",
        "last", "keys", "values", "abs", "bool", "list", "unique", "sort", "capitalize", "count",
    };
    switch (pick(6)) {
      case 0: return "default(" + expr(depth) + ")";
      case 1: return "join(" + expr(depth) + ")";
      case 2: return "replace(" + expr(depth) + ", " + expr(depth) + ")";
      case 3: return "round(" + expr(depth) + ")";
      default: return names[pick(names.size())];
    }
  }

  std::string test() {
    static const std::vector<std::string> tests = {
        "defined", "undefined", "none", "string", "number", "integer", "float", "boolean",
        "mapping", "sequence", "even", "odd",
    };
    return tests[pick(tests.size())];
  }

  // Byte- and token-level mutations of `s`.
  std::string mutate(std::string s) {
    int rounds = 1 + static_cast<int>(pick(4));
    for (int r = 0; r < rounds; ++r) {
      size_t at = s.empty() ? 0 : pick(s.size() + 1);
      switch (pick(7)) {
        case 0:
          if (!s.empty() && at < s.size()) s.erase(at, 1 + pick(std::min<size_t>(8, s.size() - at)));
          break;
        case 1: s.insert(at, fragments()[pick(fragments().size())]); break;
        case 2:
          if (at < s.size()) s[at] = static_cast<char>(pick(256));
          break;
        case 3: s = s.substr(0, at); break;
        case 4:
          if (at < s.size()) s.insert(at, s.substr(at, 1 + pick(std::min<size_t>(16, s.size() - at))));
          break;
        case 5: s.insert(at, std::string(1 + pick(300), "([{-"[pick(4)])); break;
        default: s = s.substr(at) + s.substr(0, at); break;
      }
    }
    return s;
  }

  std::string input() {
    switch (pick(4)) {
      case 0: return expr(1 + static_cast<int>(pick(6)));
      case 1: return mutate(expr(1 + static_cast<int>(pick(4))));
      case 2: return mutate(corpus()[pick(corpus().size())]);
      default: {
        std::string t = "a {{ " + expr(3) + " }} b";
        return chance(50) ? mutate(t) : t;
      }
    }
  }

 private:
  std::mt19937_64 rng_;
};

class FuzzTest : public ::testing::Test {
 protected:
  FuzzTest() {
    event_ = Json::parse(R"({"id": 9, "payload": {
        "count": 3, "name": "Web \u00e9", "tags": ["a", "b", 3], "obj": {"x": [1, 2]},
        "n": null, "big": -9223372036854775808, "f": -0.0, "key": "obj",
        "items": [{"name": "i"}], "list": [3, 1, 3]}})");
    config_ = {{"x", 1}};
    scope_.bind("event", &event_);
    scope_.bind("trigger", &event_);
    scope_.bind("config", &config_);
    scope_.bind_function("succeeded", [](std::span<const Json>) -> Result<Json> {
      return Json(true);
    });
    scope_.bind_function("echo", [](std::span<const Json> args) -> Result<Json> {
      return Json(std::vector<Json>(args.begin(), args.end()));
    });
    scope_.bind_function("boom", [](std::span<const Json>) -> Result<Json> {
      return make_error(Errc::kInternal, "boom");
    });
  }

  static bool has_column(const std::string& message) {
    return message.find(" at column ") != std::string::npos;
  }

  // Runs one input through every entry point; returns false (with a reason) on a property failure.
  bool run_one(const std::string& in, std::string* why) {
    auto e = Expression::compile(in);
    auto again = Expression::compile(in);
    if (e.ok() != again.ok()) return *why = "compile not deterministic", false;
    if (!e.ok()) {
      if (!has_column(e.error().message)) return *why = "no column: " + e.error().message, false;
      if (e.error().message != again.error().message) return *why = "message differs", false;
    } else {
      auto r1 = e->evaluate(scope_);
      auto r2 = again->evaluate(scope_);
      if (r1.ok() != r2.ok()) return *why = "evaluate not deterministic", false;
      if (r1.ok() && *r1 != *r2 && *r1 == *r1) return *why = "different values", false;
      if (!r1.ok() && !has_column(r1.error().message)) {
        return *why = "no column: " + r1.error().message, false;
      }
      auto t = e->test(scope_);
      if (t.ok() != r1.ok()) return *why = "test/evaluate disagree", false;
    }
    auto t = Template::compile(in);
    if (t.ok()) {
      auto r = t->render(scope_);
      if (!t->is_template() && (!r.ok() || *r != Json(in))) return *why = "plain text changed", false;
    } else if (!has_column(t.error().message)) {
      return *why = "no column: " + t.error().message, false;
    }
    auto p = CompiledParams::compile(Json{{"k", Json::array({in, 1})}});
    if (p.ok()) (void)p->render(scope_);
    auto c = Condition::compile(Json{{"expression", in}});
    if (c.ok()) (void)c->matches(scope_);
    return true;
  }

  Json event_;
  Json config_;
  Scope scope_;
};

TEST_F(FuzzTest, RandomAndMutatedInputsNeverCrashOrHang) {
  const uint64_t iterations = env_u64("ATTUNE_FUZZ_ITERATIONS", 20000);
  const uint64_t seed = env_u64("ATTUNE_FUZZ_SEED", std::random_device{}());
  std::cout << "fuzz seed " << seed << " iterations " << iterations
            << " (reproduce with ATTUNE_FUZZ_SEED=" << seed << ")" << std::endl;
  RecordProperty("seed", std::to_string(seed));
  Generator gen(seed);
  uint64_t compiled = 0;
  auto start = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < iterations; ++i) {
    std::string in = gen.input();
    auto t0 = std::chrono::steady_clock::now();
    std::string why;
    bool ok = run_one(in, &why);
    auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_TRUE(ok) << why << "\ninput: " << Json(in).dump(-1, ' ', true, Json::error_handler_t::replace)
                    << "\nseed " << seed << " iteration " << i;
    ASSERT_LT(took, std::chrono::seconds(2))
        << "slow input: " << Json(in).dump(-1, ' ', true, Json::error_handler_t::replace);
    if (Expression::compile(in).ok()) ++compiled;
  }
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "fuzz: " << iterations << " inputs, " << compiled << " compiled, " << secs << " s"
            << std::endl;
  EXPECT_GT(compiled, iterations / 10);  // the generator must keep exercising the evaluator
}

TEST_F(FuzzTest, RandomConditionsNeverCrash) {
  const uint64_t seed = env_u64("ATTUNE_FUZZ_SEED", std::random_device{}());
  std::cout << "condition fuzz seed " << seed << std::endl;
  std::mt19937_64 rng(seed);
  const std::vector<std::string> ops = {
      "equals", "not_equals", "iequals", "contains", "ncontains", "icontains", "startswith",
      "endswith", "regex", "lt", "lte", "gt", "gte", "in", "nin", "exists", "nexists",
      "timediff_lt", "timediff_gt", "bogus"};
  const std::vector<Json> values = {
      1, -2.5, "a", "", "(x", ".*", "^W", Json::array({1, "a"}), Json::object(), nullptr, true,
      "2026-01-01T00:00:00Z"};
  const std::vector<std::string> fields = {"count", "name", "tags", "obj.x.1", "n", "missing.z",
                                           "items.0.name", "big", "f", "tags.9"};
  for (int i = 0; i < 5000; ++i) {
    Json crit = Json::array();
    int n = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < n; ++k) {
      crit.push_back({{"field", fields[rng() % fields.size()]},
                      {"operator", ops[rng() % ops.size()]},
                      {"value", values[rng() % values.size()]}});
    }
    auto c = Condition::compile(crit);
    if (c.ok()) (void)c->matches(scope_);
  }
}

}  // namespace
}  // namespace attune::expr
