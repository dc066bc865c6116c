// capsa-plugin-host: what a C++ DCC plugin does with capsa. Opens (or creates) a store,
// resolves the latest crate of a shot's capsule, bumps to a new crate, publishes a file into
// it, seals it, and reports; then drives a review staging on the mock backend and prints
// the staging events it receives. Errors arrive as capsa::Error with a stable code.
//
//   capsa-plugin-host STORE_DIR [CAPSULE_ID]
#include <capsa.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

namespace fs = std::filesystem;

int main(int argc, char **argv) {
  if (argc < 2) {
    std::cerr << "usage: capsa-plugin-host STORE_DIR [CAPSULE_ID]\n";
    return 2;
  }
  const std::string store_dir = argv[1];
  const std::string id = argc > 2 ? argv[2] : "656796239c1b981568180614";
  try {
    std::cout << "capsa " << capsa::library_version() << "\n";
    capsa::Store store = fs::exists(fs::path(store_dir) / ".capsa")
                             ? capsa::Store::open(store_dir)
                             : capsa::Store::init(store_dir);
    capsa::Capsule capsule = [&] {
      try {
        return store.capsule(id);
      } catch (const capsa::Error &e) {
        if (e.code_name() != "NOT_FOUND") throw;
        return store.create_capsule(id);
      }
    }();

    std::optional<capsa::Crate> latest = capsule.latest();
    std::cout << "latest crate of " << capsule.id() << ": "
              << (latest ? latest->version() : std::string("(none)")) << "\n";

    capsa::BumpOptions options;
    options.comment = "plugin host: lighting pass";
    options.carry_over = {capsa::Section::Scenes};
    capsa::Crate next = capsule.bump(options);
    std::cout << "bumped to " << next.version() << "\n";

    const fs::path render = fs::path(store_dir).parent_path() / ("beauty_" + next.version() + ".exr");
    std::ofstream(render) << "pixels";
    const std::string landed = next.publish(render.string(), "beauty.exr");
    next.seal();
    std::cout << "published " << next.version() << ": " << landed << "\n";

    // Misuse is an exception with a code, never a crash.
    try {
      next.set_comment("too late");
    } catch (const capsa::Error &e) {
      std::cout << "as expected: [" << e.code_name() << "] " << e.what() << "\n";
    }
    std::cout << "latest published: " << capsule.latest(true)->version() << "\n";

    // A review staging for the published crate; print its events as they happen.
    capsa::StagingManager stagings =
        capsa::StagingManager::open_mock((fs::path(store_dir) / ".capsa" / "staging.db").string());
    capsa::Subscription events = stagings.subscribe([](const capsa::Event &e) {
      if (e.event == "StatusChanged") {
        std::cout << "staging event: " << e.name << " " << (e.from.empty() ? "(new)" : e.from)
                  << " -> " << (e.to.empty() ? "(gone)" : e.to) << "\n";
      } else {
        std::cout << "staging event: " << e.name << " " << e.action << " " << e.outcome << "\n";
      }
      return true;
    });
    const std::string review = "review-" + next.version();
    stagings.create(review, next.version());
    stagings.delete_(review);
    stagings.cleanup(review);
  } catch (const capsa::Error &e) {
    std::cerr << "capsa error [" << e.code_name() << " " << e.code() << "]: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
