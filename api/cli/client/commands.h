// The `attune` client subcommands (login, whoami, pack, action, execution, rule, trigger, key,
// inquiry, workflow): a thin client of the public REST + WebSocket API (API.md). main.cc creates
// one ClientCommands on its CLI11 app before parsing and calls run() after.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

namespace attune::cli::client {

class Session;
struct CommandOptions;

class ClientCommands {
 public:
  // Registers the client subcommands on `app` and adds the exit-code footer to its help.
  explicit ClientCommands(CLI::App& app);
  ~ClientCommands();
  ClientCommands(const ClientCommands&) = delete;
  ClientCommands& operator=(const ClientCommands&) = delete;

  // After a successful parse: the exit code of the selected client command (which has run), or
  // nullopt when no client command was selected (e.g. `serve`).
  std::optional<int> run();

 private:
  struct Leaf {
    CLI::App* app;
    std::function<int(Session&)> handler;
  };
  CLI::App* leaf(CLI::App* parent, const std::string& name, const std::string& help,
                 std::function<int(Session&)> handler);

  std::unique_ptr<CommandOptions> o_;
  std::vector<Leaf> leaves_;
};

// app.parse() with CLI11's own help/version handling, but every parse error exits 2 (usage).
// nullopt ⇒ parsed, go on; else the exit code to return.
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv);

}  // namespace attune::cli::client
