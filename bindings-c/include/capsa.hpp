// capsa.hpp: the C++17 API of capsa.
//
// RAII classes over the cxx bridge (bindings-c/src/cpp/). Every failure throws capsa::Error,
// which carries the stable code (number and name, the same in every binding) and the message.
// Panics inside capsa are caught on the Rust side and arrive here as capsa::Error with code
// name "PANIC": nothing aborts the host.
//
// Safe with either libstdc++ ABI (-D_GLIBCXX_USE_CXX11_ABI=0 or 1): no std::string crosses the
// compiled boundary; conversions happen inline, here, in the caller's translation unit (the
// callbacks too: the sinks of capsa/callbacks.h are implemented here).
//
// Handles are independent: a Capsule or Crate stays valid after the Store it came from is
// destroyed. Objects are movable, not copyable.
#ifndef CAPSA_HPP
#define CAPSA_HPP

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "capsa.h"
#include "rust/cxx.h"
#include "capsa/cpp.rs.h"

namespace capsa {

/// A capsa failure: `code()` is the stable number (CAPSA_STATUS_* in capsa.h), `code_name()`
/// the stable string ("NOT_FOUND", "INVALID_NAME", ...), `what()` the message.
class Error : public std::runtime_error {
public:
  Error(std::uint32_t code, std::string code_name, const std::string &message)
      : std::runtime_error(message), code_(code), code_name_(std::move(code_name)) {}
  std::uint32_t code() const noexcept { return code_; }
  const std::string &code_name() const noexcept { return code_name_; }

private:
  std::uint32_t code_;
  std::string code_name_;
};

namespace detail {

inline rust::Slice<const std::uint8_t> bytes(const std::string &s) {
  return rust::Slice<const std::uint8_t>(reinterpret_cast<const std::uint8_t *>(s.data()),
                                         s.size());
}

inline std::string str(const rust::String &s) { return std::string(s.data(), s.size()); }

inline std::vector<std::string> strs(const rust::Vec<rust::String> &v) {
  std::vector<std::string> out;
  out.reserve(v.size());
  for (const rust::String &s : v) out.push_back(str(s));
  return out;
}

// Every bridge call goes through here, the one place building capsa::Error: a failure
// arrives as rust::Error, and its code and message as the ErrorInfo Rust recorded for this
// thread.
template <class F> auto call(F &&f) -> decltype(f()) {
  try {
    return f();
  } catch (const rust::Error &e) {
    const ErrorInfo info = take_error();
    if (info.code == 0) throw Error(CAPSA_STATUS_PANIC, "PANIC", e.what());
    throw Error(info.code, str(info.name), str(info.message));
  }
}

} // namespace detail

/// The library version ("0.1.0").
inline std::string library_version() {
  const rust::Str v = rust_library_version();
  return std::string(v.data(), v.size());
}

/// A frame sequence: head + zero-padded frame + tail for each frame of a frame set.
class Sequence {
public:
  explicit Sequence(rust::Box<RustSequence> inner) : inner_(std::move(inner)) {}
  /// Parse `plate.1001-1100#.exr`, `plate.%04d.exr`, `tex.<UDIM>.exr`, ...
  static Sequence parse(const std::string &pattern) {
    return Sequence(detail::call([&] { return sequence_parse(detail::bytes(pattern)); }));
  }
  std::string head() const { return detail::str(inner_->head()); }
  std::string tail() const { return detail::str(inner_->tail()); }
  std::size_t padding() const { return inner_->padding(); }
  /// The frame set, canonical text ("1001-1100"; "" when empty).
  std::string frames() const { return detail::str(inner_->frames()); }
  std::size_t frame_count() const { return inner_->frame_count(); }
  /// The frames missing between the first and the last ("" when none).
  std::string missing() const { return detail::str(inner_->missing()); }
  /// The sequence with its frames in `style`.
  std::string format(PadStyle style = PadStyle::Hash) const {
    return detail::str(detail::call([&] { return inner_->format(style); }));
  }
  /// The pattern without frames in `style` ("plate.%04d.exr").
  std::string pattern(PadStyle style) const {
    return detail::str(detail::call([&] { return inner_->pattern(style); }));
  }
  /// The file name of one frame.
  std::string path(std::int64_t frame) const { return detail::str(inner_->path(frame)); }

private:
  rust::Box<RustSequence> inner_;
};

/// A style by its stable name ("hash", "at", "printf", "houdini"); INVALID_ARGUMENT otherwise.
inline PadStyle parse_pad_style(const std::string &name) {
  return detail::call([&] { return pad_style_parse(detail::bytes(name)); });
}

namespace detail {
inline std::vector<Sequence> seqs(const rust::Box<RustSequenceList> &list) {
  std::vector<Sequence> out;
  const std::size_t n = list->len();
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    out.emplace_back(call([&] { return list->get(i); }));
  }
  return out;
}
} // namespace detail

/// Detect sequences among file names (one linear pass; names without a frame are left out).
inline std::vector<Sequence> sequences_in(const std::vector<std::string> &names) {
  return detail::call([&] {
    rust::Box<RustStringList> list = new_string_list();
    for (const std::string &n : names) list->push(detail::bytes(n));
    return detail::seqs(::capsa::sequences_in(*list));
  });
}

/// Detect sequences in a directory.
inline std::vector<Sequence> find_sequences(const std::string &dir) {
  return detail::call([&] { return detail::seqs(::capsa::find_sequences(detail::bytes(dir))); });
}

/// A set of frames ("1-100x2,105").
class FrameSet {
public:
  static FrameSet parse(const std::string &spec) {
    return FrameSet(detail::call([&] { return frameset_parse(detail::bytes(spec)); }));
  }
  std::size_t size() const { return inner_->len(); }
  /// Canonical text.
  std::string text() const { return detail::str(inner_->text()); }
  /// The first `limit` frames, ascending.
  std::vector<std::int64_t> frames(std::size_t limit) const {
    rust::Vec<std::int64_t> v = inner_->frames(limit);
    return std::vector<std::int64_t>(v.begin(), v.end());
  }

private:
  explicit FrameSet(rust::Box<RustFrameSet> inner) : inner_(std::move(inner)) {}
  rust::Box<RustFrameSet> inner_;
};

/// The form of a valid capsule id: "objectid", "uuid" or "slug"; INVALID_NAME otherwise.
inline std::string capsule_id_kind(const std::string &id) {
  return detail::str(detail::call([&] { return ::capsa::capsule_id_kind(detail::bytes(id)); }));
}

/// The number of a crate version ("v007" -> 7).
inline std::uint32_t parse_version(const std::string &v) {
  return detail::call([&] { return version_parse(detail::bytes(v)); });
}

/// A version number as text at `padding` digits (7, 3 -> "v007").
inline std::string format_version(std::uint32_t number, std::uint32_t padding = 3) {
  return detail::str(detail::call([&] { return version_format(number, padding); }));
}

/// The version after `v`, at `padding` digits.
inline std::string next_version(const std::string &v, std::uint32_t padding = 3) {
  return detail::str(detail::call([&] { return version_next(detail::bytes(v), padding); }));
}

/// -1, 0 or 1 as `a` is before, equal to or after `b` (numeric order).
inline int compare_versions(const std::string &a, const std::string &b) {
  return detail::call([&] { return version_compare(detail::bytes(a), detail::bytes(b)); });
}

// ---- archives ----

// Progress (files_done, files_total, bytes_done, bytes_total) comes from the bridge.

/// A progress callback: return false to cancel (the operation then throws capsa::Error
/// CANCELLED and leaves nothing half-written). An exception it throws cancels too, and is
/// rethrown to the caller. It may run on a capsa worker thread, never twice at once.
using ProgressCallback = std::function<bool(const Progress &)>;

namespace detail {
// A ProgressCallback as the bridge's ProgressSink: an exception it throws cancels, and is kept
// for the caller.
class ProgressAdapter final : public ProgressSink {
public:
  ProgressAdapter(const ProgressCallback &cb, std::exception_ptr &error) : cb_(cb), error_(error) {}
  bool on_progress(const Progress &p) const noexcept override {
    try {
      return cb_(p);
    } catch (...) {
      error_ = std::current_exception();
      return false;
    }
  }

private:
  const ProgressCallback &cb_;
  std::exception_ptr &error_;
};
// Run a bridge call with a progress sink (null when `cb` is empty); rethrow the callback's own
// exception if it threw.
template <class F>
auto with_progress(const ProgressCallback &cb, F &&f) -> decltype(f(std::unique_ptr<ProgressSink>())) {
  std::exception_ptr error;
  std::unique_ptr<ProgressSink> sink;
  if (cb) sink = std::make_unique<ProgressAdapter>(cb, error);
  try {
    return call([&] { return f(std::move(sink)); });
  } catch (const Error &) {
    if (error) std::rethrow_exception(error);
    throw;
  }
}
} // namespace detail

/// Verify an archive (structure, every CRC, the SHA-256 manifest); the report as JSON.
/// Throws CORRUPT naming the first bad entry.
inline std::string verify_archive(const std::string &zip, const ProgressCallback &progress = {}) {
  return detail::str(detail::with_progress(progress, [&](std::unique_ptr<ProgressSink> sink) {
    return archive_verify(detail::bytes(zip), std::move(sink));
  }));
}

/// Options for Capsule::bump.
struct BumpOptions {
  std::optional<std::string> comment;
  std::optional<std::string> created_by;
  std::vector<Section> carry_over;
  std::vector<std::string> tags;
};

/// A crate (v001, v002, ...) of a capsule.
class Crate {
public:
  explicit Crate(rust::Box<RustCrate> inner) : inner_(std::move(inner)) {}
  /// "v003"
  std::string version() const { return detail::str(detail::call([&] { return inner_->version(); })); }
  std::uint32_t version_number() const {
    return detail::call([&] { return inner_->version_number(); });
  }
  std::string path() const { return detail::str(detail::call([&] { return inner_->path(); })); }
  std::string section_path(Section s) const {
    return detail::str(detail::call([&] { return inner_->section_path(s); }));
  }
  /// The metadata as a JSON object (version, created_by, created_at, comment, parent, tags,
  /// published, published_at, schema).
  std::string metadata_json() const {
    return detail::str(detail::call([&] { return inner_->metadata_json(); }));
  }
  bool is_published() const { return detail::call([&] { return inner_->is_published(); }); }
  void set_comment(const std::string &comment) const {
    detail::call([&] { inner_->set_comment(detail::bytes(comment)); });
  }
  /// Seal: the crate becomes published and refuses further writes (SEALED).
  void seal() const { detail::call([&] { inner_->seal(); }); }
  /// Publish a file or a whole frame sequence into publishes/ (atomic, read-only, never
  /// overwriting). `dest` is relative to publishes/. Returns where it landed.
  std::string publish(const std::string &src,
                      const std::optional<std::string> &dest = std::nullopt) const {
    return detail::str(detail::call([&] {
      const std::string d = dest.value_or(std::string());
      return inner_->publish(detail::bytes(src), detail::bytes(d), dest.has_value());
    }));
  }
  /// Sequences (and single files) in a section.
  std::vector<Sequence> sequences(Section s) const {
    return detail::call([&] { return detail::seqs(inner_->sequences(s)); });
  }

private:
  rust::Box<RustCrate> inner_;
};

/// Options for Capsule::archive.
struct ArchiveOptions {
  std::string policy; ///< "auto", "store" or "deflate"; empty: the store's default
  bool replace = false; ///< replace an existing file at the destination
};

/// A capsule: one directory per project-management entry, holding crates.
class Capsule {
public:
  explicit Capsule(rust::Box<RustCapsule> inner) : inner_(std::move(inner)) {}
  std::string id() const { return detail::str(inner_->id()); }
  std::string path() const { return detail::str(detail::call([&] { return inner_->path(); })); }
  /// Allocate the next crate (safe with any number of concurrent writers).
  Crate bump(const BumpOptions &options = BumpOptions()) const {
    return Crate(detail::call([&] {
      rust::Box<RustBumpOptions> o = new_bump_options();
      if (options.comment) o->set_comment(detail::bytes(*options.comment));
      if (options.created_by) o->set_created_by(detail::bytes(*options.created_by));
      for (Section s : options.carry_over) o->add_carry_over(s);
      for (const std::string &t : options.tags) o->add_tag(detail::bytes(t));
      return inner_->bump(*o);
    }));
  }
  /// Versions of the complete crates, ascending.
  std::vector<std::string> crates() const {
    return detail::strs(detail::call([&] { return inner_->crates(); }));
  }
  /// The crate `version` (any width: "v2" finds v002).
  Crate get(const std::string &version) const {
    return Crate(detail::call([&] { return inner_->get(detail::bytes(version)); }));
  }
  /// Archive the capsule into one verified zip at `dest`; the report as JSON.
  std::string archive(const std::string &dest, const ArchiveOptions &options,
                      const ProgressCallback &progress = {}) const {
    return detail::str(detail::with_progress(progress, [&](std::unique_ptr<ProgressSink> sink) {
      return inner_->archive(detail::bytes(dest), options.policy, options.replace, std::move(sink));
    }));
  }
  std::string archive(const std::string &dest, bool replace = false,
                      const ProgressCallback &progress = {}) const {
    return archive(dest, ArchiveOptions{std::string(), replace}, progress);
  }
  /// Take the capsule offline after checking `archive` holds exactly its tree; the stub as
  /// JSON.
  std::string take_offline(const std::string &archive) const {
    return detail::str(detail::call([&] { return inner_->take_offline(detail::bytes(archive)); }));
  }
  bool is_offline() const { return inner_->is_offline(); }
  /// The offline stub as JSON (capsule, archive, files, ...); std::nullopt when online.
  std::optional<std::string> offline_stub() const {
    std::string stub = detail::str(detail::call([&] { return inner_->offline_stub(); }));
    if (stub == "null") return std::nullopt;
    return stub;
  }
  /// The latest crate (or the latest sealed one), if any.
  std::optional<Crate> latest(bool published = false) const {
    rust::Box<RustCrate> k = detail::call([&] { return inner_->latest(published); });
    if (!k->exists()) return std::nullopt;
    return Crate(std::move(k));
  }

private:
  rust::Box<RustCapsule> inner_;
};

/// An open store. Thread-safe.
class Store {
public:
  /// Open an existing store.
  static Store open(const std::string &path) {
    return Store(detail::call([&] { return store_open(detail::bytes(path)); }));
  }
  /// Create a store; `padding` 0 means the default (3 digits).
  static Store init(const std::string &path, std::uint32_t padding = 0) {
    return Store(detail::call([&] { return store_init(detail::bytes(path), padding); }));
  }
  std::string root() const { return detail::str(detail::call([&] { return inner_->root(); })); }
  std::uint32_t padding() const { return inner_->padding(); }
  Capsule create_capsule(const std::string &id) const {
    return Capsule(detail::call([&] { return inner_->create_capsule(detail::bytes(id)); }));
  }
  /// An existing capsule (NOT_FOUND otherwise).
  Capsule capsule(const std::string &id) const {
    return Capsule(detail::call([&] { return inner_->capsule(detail::bytes(id)); }));
  }
  /// Ids of every capsule, sorted.
  std::vector<std::string> capsules() const {
    return detail::strs(detail::call([&] { return inner_->capsules(); }));
  }
  /// Bring an offline capsule back from its recorded archive.
  Capsule retrieve(const std::string &id) const {
    return Capsule(detail::call([&] { return inner_->retrieve(detail::bytes(id)); }));
  }
  /// Restore an archive into this store (ALREADY_EXISTS unless `replace`).
  Capsule restore(const std::string &zip, bool replace = false,
                  const ProgressCallback &progress = {}) const {
    return Capsule(detail::with_progress(progress, [&](std::unique_ptr<ProgressSink> sink) {
      return inner_->restore(detail::bytes(zip), replace, std::move(sink));
    }));
  }
  /// Check (and with `repair`, mend) what a crash left behind; returns the problems left.
  std::size_t fsck(bool repair = false) const {
    return detail::call([&] { return inner_->fsck(repair); });
  }

private:
  explicit Store(rust::Box<RustStore> inner) : inner_(std::move(inner)) {}
  rust::Box<RustStore> inner_;
};

// ---- stagings ----

/// An override for create / update.
struct Override {
  Scope scope = Scope::App;
  Visibility visibility = Visibility::Public;
  std::string key;
  std::string value;
};

/// A staging as the lifecycle commands return it (private values masked).
struct Staging {
  std::string name;
  std::string tag;
  std::string status; ///< "Running", "Failure", "CreatePending", ..., "Archived"
  std::string reason; ///< the failure reason, or empty
  std::string json;   ///< the whole staging as a JSON object
};

/// One staging event, as delivered to a subscription.
struct Event {
  std::int64_t seq = 0;
  std::string name;
  std::string event; ///< "StatusChanged" or "CommandFinished"
  std::string from, to; ///< StatusChanged: statuses ("" when new / gone)
  std::string action, outcome; ///< CommandFinished
  std::string reason;
  std::string json;
};

/// A scope by its stable name ("app", "staging"); INVALID_ARGUMENT otherwise.
inline Scope parse_scope(const std::string &name) {
  return detail::call([&] { return scope_parse(detail::bytes(name)); });
}

/// A visibility by its stable name ("public", "private"); INVALID_ARGUMENT otherwise.
inline Visibility parse_visibility(const std::string &name) {
  return detail::call([&] { return visibility_parse(detail::bytes(name)); });
}

namespace detail {
inline Staging staging(const StagingInfo &i) {
  return Staging{str(i.name), str(i.tag), str(i.status), str(i.reason), str(i.json)};
}
inline rust::Box<RustOverrides> overrides(const std::vector<Override> &list) {
  rust::Box<RustOverrides> o = new_overrides();
  for (const Override &x : list) o->push(x.scope, x.visibility, bytes(x.key), bytes(x.value));
  return o;
}
using EventCallback = std::function<bool(const Event &)>;
// An EventCallback as the bridge's EventSink. Exceptions stop the subscription; they never
// unwind into capsa.
class EventAdapter final : public EventSink {
public:
  explicit EventAdapter(EventCallback cb) : cb_(std::move(cb)) {}
  bool on_event(const StagingEvent &e) const noexcept override {
    try {
      return cb_(Event{e.seq, str(e.name), str(e.event), str(e.from), str(e.to), str(e.action),
                       str(e.outcome), str(e.reason), str(e.json)});
    } catch (...) {
      return false;
    }
  }

private:
  EventCallback cb_;
};
} // namespace detail

/// An event subscription: destroying it unsubscribes (waiting for a callback in flight), then
/// destroys the callback.
class Subscription {
public:
  explicit Subscription(rust::Box<RustSubscription> inner) : inner_(std::move(inner)) {}
  /// True once the callback returned false (or threw): no more events are delivered.
  bool stopped() const { return inner_->stopped(); }

private:
  rust::Box<RustSubscription> inner_;
};

/// Lifecycle commands on stagings; state in an SQLite file; deployed through a backend.
class StagingManager {
public:
  /// The state `state` (an SQLite file or a `postgres://` URL) with the backend named as the
  /// CLI names it (`mock`, `script:DIR`, `kubernetes:DIR`); `options_json` is empty or a JSON
  /// object of optional settings (`actor`, `pending_timeout_ms`, `key_file`, ... as
  /// `capsa_staging_manager_open` documents). The one opening every binding shares.
  static StagingManager open(const std::string &state, const std::string &backend,
                             const std::string &options_json = std::string()) {
    return StagingManager(
        detail::call([&] { return staging_open(detail::bytes(state), backend, options_json); }));
  }
  /// The in-memory mock backend (for tests).
  static StagingManager open_mock(const std::string &state_file) {
    return StagingManager(detail::call([&] { return staging_open_mock(detail::bytes(state_file)); }));
  }
  /// DM's control scripts in `script_dir`.
  static StagingManager open_script(const std::string &state_file, const std::string &script_dir) {
    return StagingManager(detail::call(
        [&] { return staging_open_script(detail::bytes(state_file), detail::bytes(script_dir)); }));
  }
  /// A Kubernetes cluster: the manifests of `template_dir` applied into one namespace per
  /// staging, through the kubeconfig file `kubeconfig` (default: `KUBECONFIG`,
  /// `~/.kube/config`, else the in-cluster service account). Throws capsa::Error:
  /// INVALID_ARGUMENT for a missing or bad template, BACKEND for an unusable kubeconfig.
  static StagingManager open_kubernetes(const std::string &state_file, const std::string &template_dir,
                                        const std::optional<std::string> &kubeconfig = std::nullopt) {
    return StagingManager(detail::call([&] {
      return staging_open_kubernetes(detail::bytes(state_file), detail::bytes(template_dir),
                                     detail::bytes(kubeconfig.value_or(std::string())),
                                     kubeconfig.has_value());
    }));
  }
  Staging create(const std::string &name, const std::string &tag,
                 const std::vector<Override> &overrides = {}) const {
    return detail::staging(detail::call([&] {
      return inner_->create(detail::bytes(name), detail::bytes(tag), *detail::overrides(overrides));
    }));
  }
  /// Update; `overrides` std::nullopt keeps the current ones.
  Staging update(const std::string &name, const std::string &tag,
                 const std::optional<std::vector<Override>> &overrides = std::nullopt) const {
    return detail::staging(detail::call([&] {
      return inner_->update(detail::bytes(name), detail::bytes(tag),
                            *detail::overrides(overrides.value_or(std::vector<Override>())),
                            !overrides.has_value());
    }));
  }
  /// Delete (archive): workloads removed, volumes kept.
  Staging delete_(const std::string &name) const {
    return detail::staging(detail::call([&] { return inner_->delete_(detail::bytes(name)); }));
  }
  Staging restore(const std::string &name) const {
    return detail::staging(detail::call([&] { return inner_->restore(detail::bytes(name)); }));
  }
  /// Remove volumes and the record; std::nullopt when it is gone.
  std::optional<Staging> cleanup(const std::string &name) const {
    StagingInfo i = detail::call([&] { return inner_->cleanup(detail::bytes(name)); });
    if (!i.exists) return std::nullopt;
    return detail::staging(i);
  }
  Staging get(const std::string &name) const {
    return detail::staging(detail::call([&] { return inner_->get(detail::bytes(name)); }));
  }
  std::vector<Staging> list() const {
    rust::Vec<StagingInfo> v = detail::call([&] { return inner_->list(); });
    std::vector<Staging> out;
    for (const StagingInfo &i : v) out.push_back(detail::staging(i));
    return out;
  }
  /// Check stagings with the backend; the report as JSON.
  std::string reconcile() const {
    return detail::str(detail::call([&] { return inner_->reconcile(); }));
  }
  /// The audit log (one row per command, private values masked) as a JSON array, oldest
  /// first: every staging's, or `name`'s; `limit` 0 means all (else the newest `limit`).
  std::string audit_log(const std::optional<std::string> &name = std::nullopt,
                        std::size_t limit = 0) const {
    return detail::str(detail::call([&] {
      return inner_->audit_log(detail::bytes(name.value_or(std::string())), name.has_value(), limit);
    }));
  }
  /// The events (of every process sharing the state) after sequence number `after`, oldest
  /// first, at most `limit` (0: 1000), as a JSON array.
  std::string events_since(std::int64_t after = 0, std::size_t limit = 0) const {
    return detail::str(detail::call([&] { return inner_->events_since(after, limit); }));
  }
  /// Clean up archived stagings older than `older_than_ms` (default: the retention); the
  /// names removed.
  std::vector<std::string> clean_archived(const std::optional<std::uint64_t> &older_than_ms = std::nullopt) const {
    return detail::strs(detail::call(
        [&] { return inner_->clean_archived(older_than_ms.value_or(0), older_than_ms.has_value()); }));
  }
  /// Script the mock backend (a manager opened with `mock`): one JSON command, as
  /// `capsa_staging_mock_control` documents (`{"hold":"update"}`, `{"calls":true}`, ...); the
  /// answer as JSON (`null`, a count, or the calls `[["create","web"],...]`).
  std::string mock(const std::string &command_json) const {
    return detail::str(detail::call([&] { return inner_->mock(detail::bytes(command_json)); }));
  }
  /// Call `callback` for every event (on the thread that made the change, never twice at
  /// once) until the Subscription is destroyed or the callback returns false or throws.
  Subscription subscribe(std::function<bool(const Event &)> callback) const {
    return Subscription(detail::call([&] {
      return inner_->subscribe(std::make_unique<detail::EventAdapter>(std::move(callback)));
    }));
  }

private:
  explicit StagingManager(rust::Box<RustStagingManager> inner) : inner_(std::move(inner)) {}
  rust::Box<RustStagingManager> inner_;
};

} // namespace capsa

#endif // CAPSA_HPP
