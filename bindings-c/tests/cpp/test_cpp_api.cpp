// C++ API tests: RAII classes, exceptions carrying code and message, misuse (invalid UTF-8,
// a capsule outliving its store, bad enum values) giving capsa::Error, never a crash.
#include "capsa.hpp"

#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

namespace fs = std::filesystem;

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                                  \
  do {                                                                               \
    ++checks;                                                                        \
    if (!(cond)) {                                                                   \
      ++failures;                                                                    \
      std::cerr << __FILE__ << ":" << __LINE__ << ": CHECK failed: " #cond "\n";     \
    }                                                                                \
  } while (0)

// Run `f`, expecting a capsa::Error with the code name `code`.
template <class F> static void expect_error(const char *code, F &&f, int line) {
  ++checks;
  try {
    f();
    ++failures;
    std::cerr << "line " << line << ": expected " << code << ", got success\n";
  } catch (const capsa::Error &e) {
    if (e.code_name() != code || std::string(e.what()).empty()) {
      ++failures;
      std::cerr << "line " << line << ": expected " << code << ", got " << e.code_name()
                << " (" << e.code() << "): " << e.what() << "\n";
    }
  } catch (const std::exception &e) {
    ++failures;
    std::cerr << "line " << line << ": expected capsa::Error, got " << e.what() << "\n";
  }
}
#define EXPECT_ERROR(code, body) expect_error(code, [&] { body; }, __LINE__)

int main() {
  const fs::path root = fs::temp_directory_path() / ("capsa-cpp-test-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root);

  CHECK(capsa::library_version() == "0.1.0");

  {
    capsa::Store store = capsa::Store::init((root / "store").string());
    CHECK(store.padding() == 3);
    capsa::Capsule capsule = store.create_capsule("656796239c1b981568180614");
    EXPECT_ERROR("ALREADY_EXISTS", store.create_capsule("656796239c1b981568180614"));
    EXPECT_ERROR("INVALID_NAME", store.create_capsule("../x"));
    EXPECT_ERROR("NOT_FOUND", store.capsule("nothere"));
    CHECK(!capsule.latest().has_value());

    capsa::BumpOptions opts;
    opts.comment = "layout";
    opts.tags = {"anim"};
    capsa::Crate v1 = capsule.bump(opts);
    CHECK(v1.version() == "v001");
    CHECK(v1.metadata_json().find("\"comment\":\"layout\"") != std::string::npos);
    std::ofstream(fs::path(v1.section_path(capsa::Section::Scenes)) / "sh010_v001.ma") << "scene";

    capsa::BumpOptions carry;
    carry.carry_over = {capsa::Section::Scenes};
    capsa::Crate v2 = capsule.bump(carry);
    CHECK(v2.version_number() == 2);
    CHECK(fs::exists(fs::path(v2.section_path(capsa::Section::Scenes)) / "sh010_v002.ma"));
    CHECK((capsule.crates() == std::vector<std::string>{"v001", "v002"}));
    CHECK(capsule.latest()->version() == "v002");

    for (int f = 1001; f <= 1003; ++f) {
      std::ofstream(root / ("plate." + std::to_string(f) + ".exr")) << f;
    }
    const std::string landed = v2.publish((root / "plate.####.exr").string());
    CHECK(!landed.empty());
    const std::vector<capsa::Sequence> seqs = v2.sequences(capsa::Section::Publishes);
    CHECK(seqs.size() == 1);
    CHECK(!seqs.empty() && seqs[0].frames() == "1001-1003");
    CHECK(!capsule.latest(true).has_value());
    v2.seal();
    CHECK(v2.is_published());
    CHECK(capsule.latest(true)->version() == "v002");
    EXPECT_ERROR("SEALED", v2.set_comment("late"));
    CHECK(store.capsules() == std::vector<std::string>{"656796239c1b981568180614"});
    CHECK(store.fsck() == 0);
    EXPECT_ERROR("INVALID_VERSION", capsule.get("x1"));
    EXPECT_ERROR("INVALID_STORE", capsa::Store::open(root.string()));
  }

  // Misuse: invalid UTF-8, bad enum values, a capsule that outlives its store.
  {
    const std::string bad_utf8("a\xff\xfe" "b");
    std::optional<capsa::Capsule> orphan;
    {
      capsa::Store store = capsa::Store::init((root / "misuse").string(), 4);
      EXPECT_ERROR("INVALID_ARGUMENT", store.create_capsule(bad_utf8));
      orphan.emplace(store.create_capsule("shot010"));
      capsa::BumpOptions bad;
      bad.carry_over = {static_cast<capsa::Section>(42)};
      EXPECT_ERROR("INVALID_ARGUMENT", orphan->bump(bad));
      capsa::BumpOptions bad_comment;
      bad_comment.comment = bad_utf8;
      EXPECT_ERROR("INVALID_ARGUMENT", orphan->bump(bad_comment));
    }
    CHECK(orphan->bump().version() == "v0001");
    fs::remove_all(root / "misuse" / "shot010");
    EXPECT_ERROR("NOT_FOUND", orphan->bump());
    capsa::Sequence s = capsa::Sequence::parse("plate.1-3#.exr");
    EXPECT_ERROR("INVALID_ARGUMENT", s.format(static_cast<capsa::PadStyle>(9)));
    EXPECT_ERROR("INVALID_ARGUMENT", capsa::parse_pad_style("bogus"));
    EXPECT_ERROR("INVALID_SEQUENCE", capsa::FrameSet::parse("5-1x0"));
  }

  // Stagings: lifecycle, events through subscriptions, callbacks that refuse or throw.
  {
    capsa::StagingManager m = capsa::StagingManager::open_mock((root / "staging.db").string());
    std::vector<std::string> seen;
    int refusing_calls = 0, throwing_calls = 0;
    capsa::Subscription sub = m.subscribe([&](const capsa::Event &e) {
      if (e.event == "StatusChanged") seen.push_back(e.name + ":" + (e.to.empty() ? "gone" : e.to));
      return true;
    });
    capsa::Subscription refusing = m.subscribe([&](const capsa::Event &) {
      ++refusing_calls;
      return false;
    });
    capsa::Subscription throwing = m.subscribe([&](const capsa::Event &) -> bool {
      ++throwing_calls;
      throw std::runtime_error("host bug");
    });
    capsa::Override secret{capsa::Scope::App, capsa::Visibility::Private, "DB_PASSWORD", "hunter2"};
    capsa::Staging web = m.create("web", "1.0.0", {secret});
    CHECK(web.status == "Running");
    CHECK(web.json.find("hunter2") == std::string::npos);
    CHECK(!seen.empty() && seen.back() == "web:Running");
    CHECK(refusing_calls == 1 && refusing.stopped());
    CHECK(throwing_calls == 1 && throwing.stopped());
    CHECK(!sub.stopped());
    EXPECT_ERROR("INVALID_TRANSITION", m.restore("web"));
    EXPECT_ERROR("NOT_FOUND", m.get("nothere"));
    EXPECT_ERROR("INVALID_NAME", m.create("Bad Name!", "1"));
    CHECK(m.update("web", "1.1.0").tag == "1.1.0");
    CHECK(m.delete_("web").status == "Archived");
    CHECK(m.list().size() == 1);
    CHECK(!m.cleanup("web").has_value());
    CHECK(seen.back() == "web:gone");
    CHECK(!m.reconcile().empty());
    EXPECT_ERROR("INVALID_ARGUMENT",
                 capsa::StagingManager::open_script((root / "s.db").string(), "/nonexistent-dir"));
    // The one opening every binding shares: a backend spec and options as JSON.
    {
      capsa::StagingManager opened =
          capsa::StagingManager::open((root / "o.db").string(), "mock", R"({"actor": "ana"})");
      CHECK(opened.create("api", "2.0.0").status == "Running");
      EXPECT_ERROR("INVALID_ARGUMENT", capsa::StagingManager::open((root / "o.db").string(), "helm:x"));
      EXPECT_ERROR("INVALID_ARGUMENT",
                   capsa::StagingManager::open((root / "o.db").string(), "mock", R"({"actr": 1})"));
    }
    // The Kubernetes backend's bad input, before any cluster is asked (the lifecycle runs
    // against a real API server in tests/k8s/test_kubernetes.cpp, make test-k8s).
    EXPECT_ERROR("INVALID_ARGUMENT",
                 capsa::StagingManager::open_kubernetes((root / "k.db").string(), "/nonexistent-dir"));
    fs::create_directories(root / "template");
    std::ofstream(root / "template" / "cm.yaml") << "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n";
    EXPECT_ERROR("BACKEND", capsa::StagingManager::open_kubernetes(
                                (root / "k.db").string(), (root / "template").string(),
                                std::string("/nonexistent/kubeconfig")));
  }

  // The mock backend scripted through StagingManager::mock: a queued failure, a call held in
  // flight (the staging is busy meanwhile), the call log, and bad commands.
  {
    capsa::StagingManager m = capsa::StagingManager::open_mock((root / "mock.db").string());
    CHECK(m.mock(R"({"push": "create", "outcome": "failed", "reason": "boom"})") == "null");
    const capsa::Staging web = m.create("web", "1.0.0");
    CHECK(web.status == "Failure" && web.reason == "boom");
    m.mock(R"({"hold": "update"})");
    std::thread updating([&] { m.update("web", "1.1.0"); });
    while (m.mock(R"({"held": "update"})") != "1") std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK(m.get("web").status == "UpdatePending");
    EXPECT_ERROR("BUSY", m.delete_("web"));
    m.mock(R"({"release": "update"})");
    updating.join();
    CHECK(m.get("web").status == "Running");
    CHECK(m.mock(R"({"count": "update"})") == "1");
    CHECK(m.mock(R"({"calls": true})").find(R"(["update","web"])") != std::string::npos);
    m.mock(R"({"clear_calls": true})");
    CHECK(m.mock(R"({"calls": true})") == "[]");
    EXPECT_ERROR("INVALID_ARGUMENT", m.mock(R"({"hold": "deploy"})"));
    EXPECT_ERROR("INVALID_ARGUMENT", m.mock("{not json"));
    fs::create_directories(root / "scripts");
    capsa::StagingManager scripted =
        capsa::StagingManager::open_script((root / "scripted.db").string(), (root / "scripts").string());
    EXPECT_ERROR("INVALID_ARGUMENT", scripted.mock(R"({"calls": true})"));
  }

  // Archives: progress with a std::function, a callback that cancels or throws, offline and back.
  {
    capsa::Store store = capsa::Store::init((root / "arch").string());
    capsa::Capsule c = store.create_capsule("sh020");
    capsa::Crate k = c.bump();
    std::ofstream(fs::path(k.section_path(capsa::Section::Scenes)) / "sh020_v001.ma") << std::string(200000, 'x');
    int calls = 0;
    const std::string zip = (root / "sh020.zip").string();
    const std::string report = c.archive(zip, false, [&](const capsa::Progress &p) {
      ++calls;
      return p.bytes_total > 0;
    });
    CHECK(calls > 0);
    CHECK(report.find("sh020") != std::string::npos);
    CHECK(!capsa::verify_archive(zip).empty());
    EXPECT_ERROR("CANCELLED", c.archive((root / "no.zip").string(), false, [](const capsa::Progress &) { return false; }));
    CHECK(!fs::exists(root / "no.zip"));
    bool rethrown = false;
    try {
      c.archive((root / "no2.zip").string(), false, [](const capsa::Progress &) -> bool { throw std::logic_error("host bug"); });
    } catch (const std::logic_error &) {
      rethrown = true;
    }
    CHECK(rethrown);
    capsa::Store other = capsa::Store::init((root / "arch-other").string());
    CHECK(other.restore(zip).id() == "sh020");
    EXPECT_ERROR("ALREADY_EXISTS", other.restore(zip));
    c.take_offline(zip);
    CHECK(c.is_offline());
    CHECK(!store.retrieve("sh020").is_offline());
  }

  // The error carries the stable number too.
  try {
    capsa::parse_version("nope");
    CHECK(false);
  } catch (const capsa::Error &e) {
    CHECK(e.code() == 4);
    CHECK(e.code_name() == "INVALID_VERSION");
  }

  fs::permissions(root, fs::perms::owner_all, fs::perm_options::add);
  std::error_code ec;
  for (auto &p : fs::recursive_directory_iterator(root, ec)) {
    fs::permissions(p.path(), fs::perms::owner_write, fs::perm_options::add, ec);
  }
  fs::remove_all(root, ec);
  std::cout << checks << " checks, " << failures << " failures\n";
  return failures == 0 ? 0 : 1;
}
