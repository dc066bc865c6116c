// The C++ runner of the shared conformance scenarios (tests/conformance/*.json), through the
// C++ API only. Same format and calls as the Rust runner (tests/src/conformance.rs); see
// tests/conformance/README.md.
#include "capsa.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// A command started by `staging.start`, on a thread of its own, until `staging.wait`.
struct Started {
  std::thread thread;
  json result;
  std::exception_ptr error;
};

const char *const MOCK_CALLS[] = {"create", "update", "delete", "check", "cleanup", "archive_check", "tag_check"};

struct Ctx {
  fs::path dir;
  std::optional<capsa::Store> store;
  std::optional<capsa::StagingManager> staging;
  std::map<std::string, std::unique_ptr<Started>> started;
  std::vector<std::string> outputs; // every step's result (JSON text) or error, for outputs.search

  capsa::Store &get_store() {
    if (!store) store.emplace(capsa::Store::init((dir / "store").string()));
    return *store;
  }
  // Let every command still in flight finish (a failed scenario may leave one held).
  void finish_started() {
    if (staging && !started.empty()) {
      for (const char *c : MOCK_CALLS) staging->mock(json{{"release", c}}.dump());
    }
    for (auto &kv : started) kv.second->thread.join();
    started.clear();
  }
};

std::string s(const json &args, const char *key) {
  if (!args.contains(key) || !args[key].is_string()) {
    throw capsa::Error(15, "INVALID_ARGUMENT", std::string("argument missing: ") + key);
  }
  return args[key].get<std::string>();
}

std::optional<std::string> opt_s(const json &args, const char *key) {
  if (args.contains(key) && args[key].is_string()) return args[key].get<std::string>();
  return std::nullopt;
}

std::uint32_t padding(const json &args) {
  return args.contains("padding") ? args["padding"].get<std::uint32_t>() : 3;
}

capsa::Section section(const std::string &name) {
  if (name == "artifacts") return capsa::Section::Artifacts;
  if (name == "publishes") return capsa::Section::Publishes;
  if (name == "scenes") return capsa::Section::Scenes;
  throw capsa::Error(15, "INVALID_ARGUMENT", "unknown section " + name);
}

capsa::Crate get_crate(Ctx &ctx, const json &args) {
  return ctx.get_store().capsule(s(args, "id")).get(s(args, "version"));
}

fs::path path_arg(Ctx &ctx, const json &args, const char *key) { return ctx.dir / s(args, key); }

bool flag(const json &args, const char *key) {
  return args.contains(key) && args[key].is_boolean() && args[key].get<bool>();
}

std::optional<std::uint64_t> opt_u64(const json &args, const char *key) {
  if (args.contains(key) && args[key].is_number_unsigned()) return args[key].get<std::uint64_t>();
  return std::nullopt;
}

// The keys `keys` of the object `j` (null for a missing one).
json pick(const json &j, std::initializer_list<const char *> keys) {
  json out = json::object();
  for (const char *k : keys) out[k] = j.contains(k) ? j[k] : json(nullptr);
  return out;
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

// ---- the generic file helpers ----

std::optional<json> file_call(Ctx &ctx, const std::string &name, const json &args) {
  if (name.rfind("file.", 0) != 0 || name == "file.write") return std::nullopt;
  const fs::path p = path_arg(ctx, args, "path");
  auto read = [&] {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw capsa::Error(CAPSA_STATUS_IO, "IO", "cannot read " + p.string());
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  auto write = [&](const std::string &bytes) { std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes; };
  if (name == "file.truncate") {
    const auto len = static_cast<std::int64_t>(fs::file_size(p));
    const std::int64_t size = args.at("size").get<std::int64_t>();
    fs::resize_file(p, static_cast<std::uintmax_t>(std::clamp<std::int64_t>(size < 0 ? len + size : size, 0, len)));
  } else if (name == "file.flip_byte") {
    std::string bytes = read();
    const std::int64_t offset = args.value("offset", std::int64_t(0));
    std::int64_t at = offset;
    if (const auto needle = opt_s(args, "find")) {
      const std::size_t start = bytes.find(*needle);
      if (start == std::string::npos) throw std::runtime_error(*needle + " not in " + p.string());
      at = static_cast<std::int64_t>(start) + offset;
    } else if (offset < 0) {
      at = static_cast<std::int64_t>(bytes.size()) + offset;
    }
    bytes.at(static_cast<std::size_t>(at)) ^= static_cast<char>(0xff);
    write(bytes);
  } else if (name == "file.copy") {
    fs::copy_file(p, path_arg(ctx, args, "dest"), fs::copy_options::overwrite_existing);
  } else if (name == "file.remove") {
    fs::remove_all(p);
  } else if (name == "file.read") {
    return json{{"text", read()}};
  } else if (name == "file.exists") {
    return json{{"exists", fs::exists(p)}};
  } else {
    return std::nullopt;
  }
  return json::object();
}

// ---- archives ----

std::optional<json> archive_call(Ctx &ctx, const std::string &name, const json &args) {
  if (name == "archive.create") {
    capsa::ArchiveOptions o;
    o.policy = opt_s(args, "policy").value_or("");
    o.replace = flag(args, "replace");
    const json r = json::parse(ctx.get_store().capsule(s(args, "id")).archive(path_arg(ctx, args, "dest").string(), o));
    return pick(r, {"capsule", "files", "dirs", "symlinks", "deflated", "stored", "zip64", "verified", "skipped"});
  }
  if (name == "archive.verify") {
    const json r = json::parse(capsa::verify_archive(path_arg(ctx, args, "path").string()));
    return pick(r, {"capsule", "entries", "files", "dirs", "symlinks"});
  }
  if (name == "archive.restore") {
    return json{{"id", ctx.get_store().restore(path_arg(ctx, args, "path").string(), flag(args, "replace")).id()}};
  }
  if (name == "capsule.take_offline") {
    capsa::Capsule c = ctx.get_store().capsule(s(args, "id"));
    return pick(json::parse(c.take_offline(path_arg(ctx, args, "archive").string())), {"capsule", "files"});
  }
  if (name == "capsule.offline") {
    capsa::Capsule c = ctx.get_store().capsule(s(args, "id"));
    const std::optional<std::string> stub = c.offline_stub();
    return json{{"offline", c.is_offline()}, {"stub", stub ? pick(json::parse(*stub), {"capsule", "files"}) : json(nullptr)}};
  }
  if (name == "store.retrieve") {
    return json{{"id", ctx.get_store().retrieve(s(args, "id")).id()}};
  }
  return std::nullopt;
}

// ---- stagings, on the mock backend ----

capsa::StagingManager &open_staging(Ctx &ctx, const json &args) {
  json options{{"actor", "conformance"}};
  for (const char *k : {"check_interval_ms", "retention_ms"}) {
    if (args.contains(k)) options[k] = args[k];
  }
  ctx.finish_started();
  ctx.staging.reset();
  ctx.staging.emplace(capsa::StagingManager::open((ctx.dir / "staging.db").string(), "mock", options.dump()));
  if (const auto min = opt_s(args, "min_tag")) ctx.staging->mock(json{{"set_min_tag", *min}}.dump());
  return *ctx.staging;
}

std::optional<std::vector<capsa::Override>> overrides(const json &args) {
  if (!args.contains("overrides") || !args["overrides"].is_array()) return std::nullopt;
  std::vector<capsa::Override> out;
  for (const json &o : args["overrides"]) {
    out.push_back(capsa::Override{capsa::parse_scope(o.value("scope", "app")),
                                  capsa::parse_visibility(o.value("visibility", "public")), s(o, "key"),
                                  s(o, "value")});
  }
  return out;
}

// A staging in the README's shape, from the staging's JSON (scopes and visibilities spelt as
// core's as_str spells them).
json staging_json(const capsa::Staging &st) {
  const json j = json::parse(st.json);
  json out = pick(j, {"name", "tag", "status", "reason", "command_in_progress"});
  out["overrides"] = json::array();
  for (const json &o : j.at("overrides")) {
    out["overrides"].push_back(json{{"key", o.at("key")}, {"value", o.at("value")},
                                    {"scope", lower(o.at("scope").get<std::string>())},
                                    {"visibility", lower(o.at("visibility").get<std::string>())}});
  }
  return out;
}

// `staging.<command>` (also what `staging.wait` returns for a started one).
json command(const capsa::StagingManager &m, const std::string &command, const json &args) {
  const std::string name = s(args, "name");
  if (command == "create") return staging_json(m.create(name, s(args, "tag"), overrides(args).value_or(std::vector<capsa::Override>())));
  if (command == "update") return staging_json(m.update(name, s(args, "tag"), overrides(args)));
  if (command == "delete") return staging_json(m.delete_(name));
  if (command == "restore") return staging_json(m.restore(name));
  if (command == "cleanup") {
    const std::optional<capsa::Staging> st = m.cleanup(name);
    return json{{"staging", st ? staging_json(*st) : json(nullptr)}};
  }
  throw capsa::Error(CAPSA_STATUS_INVALID_ARGUMENT, "INVALID_ARGUMENT", "\"" + command + "\" is not a command");
}

json event_json(const json &e) {
  if (e.at("event") == "StatusChanged") {
    json out = pick(e, {"name", "from", "to", "reason"});
    out["kind"] = "status_changed";
    return out;
  }
  json out = pick(e, {"name", "action", "outcome", "reason"});
  out["kind"] = "command_finished";
  return out;
}

std::optional<json> staging_call(Ctx &ctx, const std::string &name, const json &args) {
  if (name.rfind("staging.", 0) != 0 && name.rfind("mock.", 0) != 0) return std::nullopt;
  if (name == "staging.open") {
    open_staging(ctx, args);
    return json::object();
  }
  capsa::StagingManager &m = ctx.staging ? *ctx.staging : open_staging(ctx, json::object());
  auto mock = [&](const json &command) { return json::parse(m.mock(command.dump())); };
  if (name == "mock.push" || name == "mock.set_default") {
    json c{{name.substr(5), s(args, "call")}, {"outcome", s(args, "outcome")}};
    if (const auto reason = opt_s(args, "reason")) c["reason"] = *reason;
    mock(c);
    return json::object();
  }
  if (name == "mock.hold" || name == "mock.release") {
    mock(json{{name.substr(5), s(args, "call")}});
    return json::object();
  }
  if (name == "mock.held") return json{{"held", mock(json{{"held", s(args, "call")}})}};
  if (name == "mock.wait_held") {
    const json want = args.value("count", 1);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    json held = mock(json{{"held", s(args, "call")}});
    while (held < want && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      held = mock(json{{"held", s(args, "call")}});
    }
    return json{{"held", held}};
  }
  if (name == "mock.calls") {
    json calls = json::array();
    for (const json &c : mock(json{{"calls", true}})) calls.push_back(json{{"call", c.at(0)}, {"name", c.at(1)}});
    return json{{"calls", calls}};
  }
  if (name == "mock.count") return json{{"count", mock(json{{"count", s(args, "call")}})}};
  if (name == "staging.start") {
    const std::string c = s(args, "command");
    if (c != "create" && c != "update" && c != "delete" && c != "restore" && c != "cleanup") {
      throw capsa::Error(CAPSA_STATUS_INVALID_ARGUMENT, "INVALID_ARGUMENT", "\"" + c + "\" is not a command");
    }
    auto started = std::make_unique<Started>();
    Started *st = started.get();
    st->thread = std::thread([&m, st, c, args] {
      try {
        st->result = command(m, c, args);
      } catch (...) {
        st->error = std::current_exception();
      }
    });
    auto &slot = ctx.started[s(args, "name")];
    if (slot) slot->thread.join();
    slot = std::move(started);
    return json::object();
  }
  if (name == "staging.wait") {
    auto it = ctx.started.find(s(args, "name"));
    if (it == ctx.started.end()) throw std::runtime_error("no command of " + s(args, "name") + " was started");
    std::unique_ptr<Started> st = std::move(it->second);
    ctx.started.erase(it);
    st->thread.join();
    if (st->error) std::rethrow_exception(st->error);
    return st->result;
  }
  if (name == "staging.get") return staging_json(m.get(s(args, "name")));
  if (name == "staging.list") {
    json names = json::array(), by_name = json::object();
    for (const capsa::Staging &st : m.list()) {
      names.push_back(st.name);
      by_name[st.name] = staging_json(st);
    }
    return json{{"names", names}, {"stagings", by_name}};
  }
  if (name == "staging.log") {
    json entries = json::array();
    for (const json &e : json::parse(m.audit_log(opt_s(args, "name"), opt_u64(args, "limit").value_or(0)))) {
      entries.push_back(pick(e, {"name", "action", "actor", "tag", "overrides", "outcome", "status_before",
                                 "status_after", "reason"}));
    }
    return json{{"entries", entries}};
  }
  if (name == "staging.events") {
    const std::optional<std::string> only = opt_s(args, "name");
    json events = json::array();
    for (const json &e : json::parse(m.events_since(0, 0))) {
      if (!only || e.at("name") == *only) events.push_back(event_json(e));
    }
    if (const auto last = opt_u64(args, "last"); last && *last < events.size()) {
      events.erase(events.begin(), events.end() - static_cast<std::ptrdiff_t>(*last));
    }
    return json{{"events", events}};
  }
  if (name == "staging.reconcile") return json::parse(m.reconcile());
  if (name == "staging.clean_archived") return json{{"removed", m.clean_archived(opt_u64(args, "older_than_ms"))}};
  const std::string prefix = "staging.";
  for (const char *c : {"create", "update", "delete", "restore", "cleanup"}) {
    if (name == prefix + c) return command(m, c, args);
  }
  return std::nullopt;
}

// One call; std::nullopt when the call is unknown.
std::optional<json> call(Ctx &ctx, const std::string &name, const json &args) {
  if (std::optional<json> got = file_call(ctx, name, args)) return got;
  if (std::optional<json> got = archive_call(ctx, name, args)) return got;
  if (std::optional<json> got = staging_call(ctx, name, args)) return got;
  if (name == "outputs.search") {
    const std::string text = s(args, "text");
    const bool found = std::any_of(ctx.outputs.begin(), ctx.outputs.end(),
                                   [&](const std::string &o) { return o.find(text) != std::string::npos; });
    return json{{"found", found}};
  }
  if (name == "id.parse") {
    const std::string v = s(args, "value");
    const std::string kind = capsa::capsule_id_kind(v);
    return json{{"id", v}, {"kind", kind}};
  }
  if (name == "version.parse") {
    const std::uint32_t n = capsa::parse_version(s(args, "value"));
    return json{{"number", n}, {"text", capsa::format_version(n, padding(args))}};
  }
  if (name == "version.next") {
    return json{{"text", capsa::next_version(s(args, "value"), padding(args))}};
  }
  if (name == "version.compare") {
    return json{{"order", capsa::compare_versions(s(args, "a"), s(args, "b"))}};
  }
  if (name == "store.init") {
    ctx.store.reset();
    ctx.store.emplace(capsa::Store::init((ctx.dir / "store").string(), padding(args)));
    return json::object();
  }
  if (name == "store.create_capsule") {
    return json{{"id", ctx.get_store().create_capsule(s(args, "id")).id()}};
  }
  if (name == "store.capsules") {
    return json{{"ids", ctx.get_store().capsules()}};
  }
  if (name == "capsule.bump") {
    capsa::Capsule c = ctx.get_store().capsule(s(args, "id"));
    capsa::BumpOptions o;
    o.comment = opt_s(args, "comment");
    o.created_by = opt_s(args, "created_by");
    if (args.contains("carry_over")) {
      for (const auto &v : args["carry_over"]) o.carry_over.push_back(section(v.get<std::string>()));
    }
    return json{{"version", c.bump(o).version()}};
  }
  if (name == "capsule.crates") {
    return json{{"versions", ctx.get_store().capsule(s(args, "id")).crates()}};
  }
  if (name == "capsule.latest") {
    capsa::Capsule c = ctx.get_store().capsule(s(args, "id"));
    const bool published = args.contains("published") && args["published"].get<bool>();
    std::optional<capsa::Crate> k = c.latest(published);
    return json{{"version", k ? json(k->version()) : json(nullptr)}};
  }
  if (name == "file.write") {
    const fs::path p = ctx.dir / s(args, "path");
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << opt_s(args, "text").value_or("");
    return json::object();
  }
  if (name == "crate.publish") {
    capsa::Crate k = get_crate(ctx, args);
    const std::string landed = k.publish((ctx.dir / s(args, "src")).string(), opt_s(args, "dest"));
    return json{{"path", fs::path(landed).lexically_relative(k.path()).generic_string()}};
  }
  if (name == "crate.seal") {
    get_crate(ctx, args).seal();
    return json::object();
  }
  if (name == "crate.metadata") {
    return json::parse(get_crate(ctx, args).metadata_json());
  }
  if (name == "crate.files") {
    capsa::Crate k = get_crate(ctx, args);
    const fs::path root = k.section_path(section(s(args, "section")));
    std::vector<std::string> files;
    for (const auto &e : fs::recursive_directory_iterator(root)) {
      if (!e.is_directory()) files.push_back(e.path().lexically_relative(root).generic_string());
    }
    std::sort(files.begin(), files.end());
    return json{{"files", files}};
  }
  if (name == "sequence.parse") {
    capsa::Sequence q = capsa::Sequence::parse(s(args, "pattern"));
    return json{{"head", q.head()},       {"tail", q.tail()},
                {"padding", q.padding()}, {"frames", q.frames()},
                {"count", q.frame_count()}};
  }
  if (name == "sequence.format" || name == "sequence.pattern") {
    const capsa::PadStyle style = capsa::parse_pad_style(s(args, "style"));
    capsa::Sequence q = capsa::Sequence::parse(s(args, "pattern"));
    return json{{"text", name == "sequence.format" ? q.format(style) : q.pattern(style)}};
  }
  if (name == "sequence.missing") {
    return json{{"frames", capsa::Sequence::parse(s(args, "pattern")).missing()}};
  }
  if (name == "sequence.path") {
    if (!args.contains("frame") || !args["frame"].is_number_integer()) {
      throw capsa::Error(15, "INVALID_ARGUMENT", "\"frame\" must be an integer");
    }
    capsa::Sequence q = capsa::Sequence::parse(s(args, "pattern"));
    return json{{"path", q.path(args["frame"].get<std::int64_t>())}};
  }
  if (name == "frameset.parse") {
    capsa::FrameSet f = capsa::FrameSet::parse(s(args, "spec"));
    json frames = f.size() <= 1000 ? json(f.frames(1000)) : json(nullptr);
    return json{{"frames", frames}, {"text", f.text()}, {"count", f.size()}};
  }
  if (name == "sequences_in") {
    std::vector<std::string> names;
    const json list = args.contains("names") ? args["names"] : json();
    if (!list.is_array()) throw capsa::Error(15, "INVALID_ARGUMENT", "\"names\" must be an array of strings");
    for (const auto &n : list) {
      if (!n.is_string()) throw capsa::Error(15, "INVALID_ARGUMENT", "\"names\" must be an array of strings");
      names.push_back(n.get<std::string>());
    }
    std::vector<std::string> out;
    for (const capsa::Sequence &q : capsa::sequences_in(names)) out.push_back(q.format(capsa::PadStyle::Hash));
    return json{{"sequences", out}};
  }
  return std::nullopt;
}

// Every key of `expected` is in `actual` with an equal value (recursively for objects).
bool matches(const json &expected, const json &actual) {
  if (expected.is_object() && actual.is_object()) {
    for (auto it = expected.begin(); it != expected.end(); ++it) {
      if (!actual.contains(it.key()) || !matches(it.value(), actual[it.key()])) return false;
    }
    return true;
  }
  return expected == actual;
}

void remove_tree(const fs::path &dir) {
  std::error_code ec;
  for (auto &p : fs::recursive_directory_iterator(dir, ec)) {
    fs::permissions(p.path(), fs::perms::owner_all, fs::perm_options::add, ec);
  }
  fs::remove_all(dir, ec);
}

std::vector<std::string> run_suite(const json &suite, const fs::path &scratch) {
  std::vector<std::string> failures;
  int n = 0;
  for (const json &scenario : suite.at("scenarios")) {
    Ctx ctx;
    ctx.dir = scratch / std::to_string(n++);
    fs::create_directories(ctx.dir);
    int i = 0;
    for (const json &step : scenario.at("steps")) {
      ++i;
      const std::string name = step.at("call").get<std::string>();
      const json args = step.contains("args") ? step["args"] : json::object();
      std::ostringstream at;
      at << suite.value("topic", "?") << " / \"" << scenario.value("name", "?") << "\" step " << i
         << " (" << name << ")";
      std::string problem;
      try {
        std::optional<json> got = call(ctx, name, args);
        if (got) ctx.outputs.push_back(got->dump());
        if (!got) {
          problem = "unknown call";
        } else if (step.contains("error")) {
          problem = "got " + got->dump() + ", expected error " + step["error"].get<std::string>();
        } else if (step.contains("expect") && !matches(step["expect"], *got)) {
          problem = "got " + got->dump() + ", expected " + step["expect"].dump();
        }
      } catch (const capsa::Error &e) {
        ctx.outputs.push_back(e.code_name() + ": " + e.what());
        if (!step.contains("error")) {
          problem = "unexpected error " + e.code_name() + " (" + e.what() + ")";
        } else if (step["error"].get<std::string>() != e.code_name()) {
          problem = "got error " + e.code_name() + " (" + e.what() + "), expected " +
                    step["error"].get<std::string>();
        }
      } catch (const std::exception &e) {
        problem = std::string("the runner failed: ") + e.what();
      }
      if (!problem.empty()) {
        failures.push_back(at.str() + ": " + problem);
        break;
      }
    }
    ctx.finish_started();
    ctx.staging.reset();
    ctx.store.reset();
    remove_tree(ctx.dir);
  }
  return failures;
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 2) {
    std::cerr << "usage: cpp_conformance DIR_OF_JSON_FILES\n";
    return 2;
  }
  const fs::path scratch = fs::temp_directory_path() / ("capsa-cpp-conf-" + std::to_string(::getpid()));
  fs::create_directories(scratch);

  // The runner itself must catch a wrong expectation, a wrong code and a missing error.
  const json self = json::parse(R"({"topic":"self","scenarios":[
    {"name":"wrong","steps":[{"call":"version.parse","args":{"value":"v002"},"expect":{"number":3}}]},
    {"name":"wrong code","steps":[{"call":"id.parse","args":{"value":"../x"},"error":"NOT_FOUND"}]},
    {"name":"missing error","steps":[{"call":"id.parse","args":{"value":"ok"},"error":"INVALID_NAME"}]},
    {"name":"wrong status","steps":[{"call":"staging.create","args":{"name":"web","tag":"1"},"expect":{"status":"Failure"}}]},
    {"name":"a secret shown","steps":[
      {"call":"staging.create","args":{"name":"web","tag":"1","overrides":[{"key":"K","value":"visible"}]}},
      {"call":"outputs.search","args":{"text":"visible"},"expect":{"found":false}}]},
    {"name":"an intact archive","steps":[
      {"call":"store.create_capsule","args":{"id":"shot"}},
      {"call":"archive.create","args":{"id":"shot","dest":"a.zip"}},
      {"call":"archive.verify","args":{"path":"a.zip"},"error":"CORRUPT"}]},
    {"name":"left in flight","steps":[
      {"call":"mock.hold","args":{"call":"create"}},
      {"call":"staging.start","args":{"command":"create","name":"web","tag":"1"}},
      {"call":"mock.wait_held","args":{"call":"create"},"expect":{"held":2}}]},
    {"name":"unknown call","steps":[{"call":"staging.no_such_call","args":{}}]}
  ]})");
  if (run_suite(self, scratch / "self").size() != 8) {
    std::cerr << "the runner does not catch wrong expectations\n";
    return 1;
  }

  std::vector<fs::path> files;
  for (const auto &e : fs::directory_iterator(argv[1])) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const char *topic : {"ids", "versions", "store", "seq", "staging", "archive"}) {
    if (std::find(files.begin(), files.end(), fs::path(argv[1]) / (std::string(topic) + ".json")) == files.end()) {
      std::cerr << topic << ".json is missing\n";
      return 1;
    }
  }
  std::vector<std::string> failures;
  std::size_t scenarios = 0;
  for (const fs::path &f : files) {
    std::ifstream in(f);
    const json suite = json::parse(in);
    scenarios += suite.at("scenarios").size();
    std::vector<std::string> more = run_suite(suite, scratch / f.stem());
    failures.insert(failures.end(), more.begin(), more.end());
  }
  remove_tree(scratch);
  for (const std::string &f : failures) std::cerr << f << "\n";
  std::cout << files.size() << " files, " << scenarios << " scenarios, " << failures.size()
            << " failures\n";
  if (scenarios < 80) {
    std::cerr << "too few conformance files or scenarios\n";
    return 1;
  }
  return failures.empty() ? 0 : 1;
}
