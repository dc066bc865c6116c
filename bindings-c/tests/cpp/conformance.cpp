// The C++ runner of the shared conformance scenarios (tests/conformance/*.json), through the
// C++ API only. Same format and calls as the Rust runner (tests/src/conformance.rs); see
// tests/conformance/README.md.
#include "capsa.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct Ctx {
  fs::path dir;
  std::optional<capsa::Store> store;

  capsa::Store &get_store() {
    if (!store) store.emplace(capsa::Store::init((dir / "store").string()));
    return *store;
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

// One call; std::nullopt when the call is unknown.
std::optional<json> call(Ctx &ctx, const std::string &name, const json &args) {
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
        if (!got) {
          problem = "unknown call";
        } else if (step.contains("error")) {
          problem = "got " + got->dump() + ", expected error " + step["error"].get<std::string>();
        } else if (step.contains("expect") && !matches(step["expect"], *got)) {
          problem = "got " + got->dump() + ", expected " + step["expect"].dump();
        }
      } catch (const capsa::Error &e) {
        if (!step.contains("error")) {
          problem = "unexpected error " + e.code_name() + " (" + e.what() + ")";
        } else if (step["error"].get<std::string>() != e.code_name()) {
          problem = "got error " + e.code_name() + " (" + e.what() + "), expected " +
                    step["error"].get<std::string>();
        }
      }
      if (!problem.empty()) {
        failures.push_back(at.str() + ": " + problem);
        break;
      }
    }
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
    {"name":"missing error","steps":[{"call":"id.parse","args":{"value":"ok"},"error":"INVALID_NAME"}]}
  ]})");
  if (run_suite(self, scratch / "self").size() != 3) {
    std::cerr << "the runner does not catch wrong expectations\n";
    return 1;
  }

  std::vector<fs::path> files;
  for (const auto &e : fs::directory_iterator(argv[1])) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
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
  if (files.size() < 3 || scenarios < 20) {
    std::cerr << "too few conformance files or scenarios\n";
    return 1;
  }
  return failures.empty() ? 0 : 1;
}
