// Internal: the compiled templates of a Definition, parallel to Definition::tasks().
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "processors/expr/expr.h"
#include "processors/workflow/workflow.h"

namespace attune::workflow {

struct CompiledTransition {
  std::optional<expr::Expression> when;
  // name → value; no value: store the task result (bare "var").
  std::vector<std::pair<std::string, std::optional<expr::CompiledParams>>> publish;
};

struct CompiledTask {
  std::optional<expr::Expression> when;
  std::optional<expr::CompiledParams> input;
  std::optional<expr::CompiledParams> with_items;
  std::optional<expr::CompiledParams> permission_set_refs;
  std::optional<expr::CompiledParams> wait_for;
  std::optional<expr::Expression> on_error;
  std::vector<CompiledTransition> next;
};

struct Compiled {
  std::vector<CompiledTask> tasks;  // same order as Definition::tasks()
  std::optional<expr::CompiledParams> vars;
  std::optional<expr::CompiledParams> output_map;
};

}  // namespace attune::workflow
