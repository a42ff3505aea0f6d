// The core.nodejs runtime: node with Attune's bootstrap (CommonJS, ES modules, exported
// functions) and the pack's node_modules.
#include "runners/nodejs_runner.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "runners/formats.h"
#include "runners/shell_runner.h"

namespace attune::runners {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kBootstrap = R"JS('use strict';
// Attune node.js bootstrap: node <this> <action file | --inline (code on fd 3)>.
const fs = require('fs');
const path = require('path');
const Module = require('module');
const { pathToFileURL } = require('url');

const target = process.argv[2];
process.argv.splice(1, 1);  // [node, <action>, ...]: the action sees itself as the script

function isModule(file) {
  if (file.endsWith('.mjs')) return true;
  if (file.endsWith('.cjs')) return false;
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try { return JSON.parse(fs.readFileSync(pj, 'utf8')).type === 'module'; } catch { return false; }
    }
    if (path.dirname(dir) === dir) return false;
  }
}

function readParameters() {
  const file = process.env.ATTUNE_PARAMETER_FILE;
  const text = file ? fs.readFileSync(file, 'utf8') : fs.readFileSync(0, 'utf8');
  if ((process.env.ATTUNE_PARAMETER_FORMAT || 'json') !== 'json') return text;
  return text.trim() === '' ? {} : JSON.parse(text);
}

function pick(value) {
  if (typeof value === 'function') return value;
  if (value && typeof value.run === 'function') return value.run.bind(value);
  return undefined;
}

async function main() {
  let fn;
  if (target === '--inline') {
    const code = fs.readFileSync(3, 'utf8');
    fs.closeSync(3);
    const filename = path.join(process.cwd(), '[inline].js');
    const m = new Module(filename, null);
    m.filename = filename;
    m.paths = Module._nodeModulePaths(process.cwd());
    process.mainModule = m;
    m.id = '.';
    m._compile(code, filename);
    m.loaded = true;
    fn = pick(m.exports);
  } else if (isModule(target)) {
    const nodePath = (process.env.NODE_PATH || '').split(path.delimiter)[0];
    if (nodePath) {
      Module.register(pathToFileURL(path.join(__dirname, 'RESOLVE_HOOK')).href, {
        data: { parentURL: pathToFileURL(path.dirname(nodePath) + '/').href },
      });
    }
    const ns = await import(pathToFileURL(target).href);
    fn = typeof ns.default === 'function' ? ns.default : pick(ns);
  } else {
    fn = pick(Module._load(target, null, true));
  }
  if (!fn) return;  // a plain script: it ran on load
  const result = await fn(readParameters());
  if (result !== undefined) process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exitCode = 1;
});
)JS";

constexpr std::string_view kResolveHook = R"JS(// Attune: bare specifiers not found from
// the importing module are resolved from the pack's environment.
let parentURL;
export async function initialize(data) { parentURL = data.parentURL; }
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (err) {
    const bare = !/^(\.|\/|[a-zA-Z][a-zA-Z0-9+.-]*:)/.test(specifier);
    if (err && err.code === 'ERR_MODULE_NOT_FOUND' && bare && parentURL) {
      return next(specifier, { ...context, parentURL });
    }
    throw err;
  }
}
)JS";

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Writes `content` to `path` unless it exists (same name = same content), atomically.
Status write_once(const fs::path& path, std::string_view content) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return Status{};
  fs::create_directories(path.parent_path(), ec);
  const fs::path tmp = path.string() + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) return make_error(Errc::kUnavailable, "cannot write " + tmp.string());
  }
  fs::rename(tmp, path, ec);
  if (ec)
    return make_error(Errc::kUnavailable, "cannot write " + path.string() + ": " + ec.message());
  return Status{};
}

}  // namespace

NodeRunner::NodeRunner(std::shared_ptr<PackEnvironments> environments, NodeRunnerOptions options)
    : environments_(std::move(environments)), options_(std::move(options)) {
  if (options_.temp_dir.empty()) options_.temp_dir = fs::temp_directory_path().string();
  if (options_.runtime_dir.empty()) {
    options_.runtime_dir = environments_ && !environments_->options().envs_dir.empty()
                               ? environments_->options().envs_dir + "/.runtime"
                               : options_.temp_dir + "/attune-runtime";
  }
}

Result<std::string> NodeRunner::bootstrap() const {
  std::lock_guard lock(mu_);
  if (!bootstrap_path_.empty()) return bootstrap_path_;
  const std::string hook_name = "attune-node-resolve-" + hex(fnv1a(kResolveHook)) + ".mjs";
  std::string boot(kBootstrap);
  boot.replace(boot.find("RESOLVE_HOOK"), std::string_view("RESOLVE_HOOK").size(), hook_name);
  const fs::path dir(options_.runtime_dir);
  if (auto st = write_once(dir / hook_name, kResolveHook); !st.ok()) return st.error();
  const fs::path boot_path = dir / ("attune-node-bootstrap-" + hex(fnv1a(boot)) + ".cjs");
  if (auto st = write_once(boot_path, boot); !st.ok()) return st.error();
  bootstrap_path_ = boot_path.string();
  return bootstrap_path_;
}

void NodeRunner::when_ready(const ActionInvocation& inv, ReadyFn ready) const {
  if (!environments_) return ready(Status{});
  environments_->when_ready(inv.pack_ref, inv.pack_dir, "core.nodejs", std::move(ready));
}

Result<ProcessSpec> NodeRunner::prepare(const ActionInvocation& inv) const {
  auto document = ShellRunner::parameter_document(inv);
  if (!document.ok()) return document.error();
  auto pack_file = resolve_pack_file(inv, {".js", ".mjs", ".cjs"});
  if (!pack_file.ok()) return pack_file.error();
  auto boot = bootstrap();
  if (!boot.ok()) return boot.error();
  ResolvedEnvironment env;
  if (environments_) {
    auto resolved = environments_->resolve(inv.pack_ref, inv.pack_dir, "core.nodejs");
    if (!resolved.ok()) return resolved.error();
    env = std::move(*resolved);
  }

  ProcessSpec spec;
  spec.timeout = inv.timeout;
  spec.max_output_bytes = inv.max_output_bytes;
  if (!pack_file->empty()) {
    spec.argv = {options_.node, *boot, *pack_file};
    spec.working_dir = (fs::path(inv.pack_dir) / "actions").string();
  } else {
    spec.argv = {options_.node, *boot, "--inline"};
    spec.fd3_data = inv.entrypoint;
    spec.working_dir = inv.pack_dir;
  }
  if (auto st = ShellRunner::deliver_parameters(inv, std::move(*document), options_.temp_dir, spec);
      !st.ok()) {
    return st.error();
  }
  if (!env.node_modules.empty()) {
    std::erase_if(spec.env, [](const std::string& kv) { return kv.rfind("NODE_PATH=", 0) == 0; });
    spec.env.push_back("NODE_PATH=" + env.node_modules);
  }
  return spec;
}

}  // namespace attune::runners
