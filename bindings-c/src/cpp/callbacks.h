// capsa/callbacks.h: the C++ callbacks the bridge calls (bindings-c/src/cpp/callbacks.rs),
// implemented in capsa.hpp. Rust owns them (std::unique_ptr) and calls them from any thread,
// never twice at once. No std::string: the same with either libstdc++ ABI.
#ifndef CAPSA_CALLBACKS_H
#define CAPSA_CALLBACKS_H

namespace capsa {

struct Progress;
struct StagingEvent;

/// Receives the progress of an archive, verify or restore; false cancels it. Must not throw.
class ProgressSink {
public:
  virtual ~ProgressSink() = default;
  virtual bool on_progress(const Progress &progress) const noexcept = 0;
};

/// Receives a subscription's staging events; false stops it. Must not throw.
class EventSink {
public:
  virtual ~EventSink() = default;
  virtual bool on_event(const StagingEvent &event) const noexcept = 0;
};

} // namespace capsa

#endif // CAPSA_CALLBACKS_H
