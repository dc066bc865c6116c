// The Kubernetes backend through the C API (capsa_staging_manager_open_kubernetes) and the C++
// API (capsa::StagingManager::open_kubernetes), against the real API server of tests/k8s.
//
// Built with the other C/C++ tests, registered with ctest under the label `k8s`, which
// `make test-c` leaves out (ctest -LE k8s) and `make test-k8s` runs (ctest -L k8s, through
// bindings-c/scripts/test-k8s.sh under tests/k8s/with-control-plane.sh). Without the control
// plane's environment (KUBECONFIG, CAPSA_K8S_SERVER, CAPSA_K8S_TOKEN, CAPSA_K8S_CA) it fails,
// saying so.
//
// No controllers run: the test plays them over the REST API with the curl command (which the
// control plane's scripts need anyway; no HTTP/TLS library to link), patching /status,
// creating the StatefulSet's claim, removing pvc-protection finalizers and finalizing the
// namespace. nlohmann::json (already used by the C++ conformance runner) reads the answers.
#include "capsa.h"
#include "capsa.hpp"

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                                            \
  do {                                                                                         \
    ++checks;                                                                                  \
    if (!(cond)) {                                                                             \
      ++failures;                                                                              \
      std::cerr << __FILE__ << ":" << __LINE__ << ": CHECK failed: " #cond "\n";               \
    }                                                                                          \
  } while (0)

[[noreturn]] static void die(const std::string &why) {
  std::cerr << "test_kubernetes: " << why << "\n";
  std::exit(1);
}

struct Kube {
  std::string kubeconfig, server, token, ca;
  fs::path tmp;
};

static Kube kube_from_env(const fs::path &tmp) {
  Kube k;
  std::string missing;
  auto var = [&](const char *name) {
    const char *v = std::getenv(name);
    if (v == nullptr || *v == '\0') missing += std::string(missing.empty() ? "" : ", ") + name;
    return std::string(v ? v : "");
  };
  k.kubeconfig = var("KUBECONFIG");
  k.server = var("CAPSA_K8S_SERVER");
  k.token = var("CAPSA_K8S_TOKEN");
  k.ca = var("CAPSA_K8S_CA");
  if (!missing.empty())
    die(missing + " not set: run through tests/k8s/with-control-plane.sh (make test-k8s)");
  if (k.server.rfind("https://127.0.0.1:", 0) != 0)
    die(k.server + " is not the loopback test API server: refusing to run");
  k.tmp = tmp;
  return k;
}

static std::string quote(const std::string &s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// One REST call through curl; the answer's JSON, or std::nullopt for 404.
static std::optional<json> call(const Kube &k, const std::string &method, const std::string &path,
                                const json *body = nullptr,
                                const std::string &content_type = "application/json") {
  std::string cmd = "curl -sS --max-time 30 --cacert " + quote(k.ca) + " -H " +
                    quote("Authorization: Bearer " + k.token) +
                    " -H 'Accept: application/json' -X " + method;
  if (body != nullptr) {
    const fs::path file = k.tmp / "body.json";
    std::ofstream(file) << body->dump();
    cmd += " -H " + quote("Content-Type: " + content_type) + " --data-binary @" + quote(file.string());
  }
  cmd += " -w '\\n%{http_code}' " + quote(k.server + path);
  FILE *p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) die("cannot run curl");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (::pclose(p) != 0) die(method + " " + path + ": curl failed: " + out);
  const size_t nl = out.rfind('\n');
  const int code = std::stoi(out.substr(nl + 1));
  const std::string text = out.substr(0, nl);
  if (code == 404) return std::nullopt;
  if (code >= 300) die(method + " " + path + ": " + std::to_string(code) + " " + text);
  return json::parse(text);
}

static std::optional<json> get(const Kube &k, const std::string &path) { return call(k, "GET", path); }

static void merge_patch(const Kube &k, const std::string &path, const json &body) {
  call(k, "PATCH", path, &body, "application/merge-patch+json");
}

static std::vector<std::string> names(const Kube &k, const std::string &path) {
  std::vector<std::string> out;
  const json list = get(k, path).value();  // a local: the loop must not outlive it
  for (const json &i : list["items"]) out.push_back(i["metadata"]["name"]);
  return out;
}

template <class F> static auto wait_for(const std::string &what, F f) {
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    auto v = f();
    if (v) return *v;
    if (std::chrono::steady_clock::now() > deadline) die("timed out waiting for " + what);
    std::this_thread::sleep_for(100ms);
  }
}

/// The deployment and StatefulSet controllers: `web` and `db` rolled out, `db`'s claim made.
static void play_ready(const Kube &k, const std::string &ns) {
  const std::string apps = "/apis/apps/v1/namespaces/" + ns;
  json d = wait_for("Deployment web", [&] { return get(k, apps + "/deployments/web"); });
  const json r = d["spec"].value("replicas", 1);
  merge_patch(k, apps + "/deployments/web/status",
              {{"status",
                {{"observedGeneration", d["metadata"]["generation"]},
                 {"replicas", r},
                 {"updatedReplicas", r},
                 {"readyReplicas", r},
                 {"availableReplicas", r}}}});
  json s = wait_for("StatefulSet db", [&] { return get(k, apps + "/statefulsets/db"); });
  const std::string pvcs = "/api/v1/namespaces/" + ns + "/persistentvolumeclaims";
  if (!get(k, pvcs + "/data-db-0")) {
    const json claim = {{"metadata", {{"name", "data-db-0"}}},
                        {"spec", s["spec"]["volumeClaimTemplates"][0]["spec"]}};
    call(k, "POST", pvcs, &claim);
  }
  const std::string rev = "db-" + s["metadata"]["generation"].dump();
  merge_patch(k, apps + "/statefulsets/db/status",
              {{"status",
                {{"observedGeneration", s["metadata"]["generation"]},
                 {"replicas", 1},
                 {"readyReplicas", 1},
                 {"currentReplicas", 1},
                 {"updatedReplicas", 1},
                 {"availableReplicas", 1},
                 {"currentRevision", rev},
                 {"updateRevision", rev}}}});
}

/// The PVC-protection and namespace controllers, until the namespace is gone.
static void play_namespace_deletion(const Kube &k, const std::string &ns) {
  wait_for("namespace " + ns + " gone", [&]() -> std::optional<bool> {
    const std::string pvcs = "/api/v1/namespaces/" + ns + "/persistentvolumeclaims";
    if (auto list = get(k, pvcs)) {
      for (const json &p : (*list)["items"]) {
        const json &meta = p["metadata"];
        if (meta.contains("deletionTimestamp") && meta.contains("finalizers"))
          merge_patch(k, pvcs + "/" + meta["name"].get<std::string>(),
                      {{"metadata", {{"finalizers", nullptr}}}});
      }
    }
    auto n = get(k, "/api/v1/namespaces/" + ns);
    if (!n) return true;
    if (n->at("metadata").contains("deletionTimestamp")) {
      (*n)["spec"]["finalizers"] = json::array();
      call(k, "PUT", "/api/v1/namespaces/" + ns + "/finalize", &*n);
    }
    return std::nullopt;
  });
}

/// The lifecycle calls, through one API or the other. Statuses as strings; "gone" for a
/// staging no longer recorded; "ERROR <code>: <message>" for a failed call.
struct Api {
  std::function<std::string(const std::string &)> create, status, delete_, cleanup;
  std::function<json()> reconcile;
};

static void lifecycle(const Kube &k, const Api &api, const std::string &name) {
  std::cout << "-- " << name << "\n";
  const std::string apps = "/apis/apps/v1/namespaces/" + name;

  // create: applied at once, then pending until the workloads are ready.
  std::future<std::string> created = std::async(std::launch::async, api.create, name);
  json web = wait_for("Deployment web", [&] { return get(k, apps + "/deployments/web"); });
  CHECK(web["spec"]["replicas"] == 2);
  const std::string image = web["spec"]["template"]["spec"]["containers"][0]["image"];
  CHECK(image.size() > 10 && image.substr(image.size() - 10) == "/web:1.0.0");
  auto cm = get(k, "/api/v1/namespaces/" + name + "/configmaps/capsa-app-env");
  CHECK(cm && (*cm)["data"] == json({{"LOG_LEVEL", "debug"}}));
  for (auto until = std::chrono::steady_clock::now() + 1500ms; std::chrono::steady_clock::now() < until;) {
    CHECK(api.status(name) == "CreatePending");
    std::this_thread::sleep_for(100ms);
  }
  play_ready(k, name);
  const std::string s = created.get();
  CHECK(s == "Running");
  if (s != "Running") std::cerr << "create: " << s << "\n";

  // check: reconcile asks nothing that fails, the staging stays Running.
  const json report = api.reconcile();
  CHECK(report.value("transient_errors", -1) == 0);
  CHECK(api.status(name) == "Running");

  // delete (archive): workloads gone, the volume claim kept.
  const std::string archived = api.delete_(name);
  CHECK(archived == "Archived");
  if (archived != "Archived") std::cerr << "delete: " << archived << "\n";
  CHECK(names(k, apps + "/deployments").empty());
  CHECK(names(k, apps + "/statefulsets").empty());
  const std::vector<std::string> claims = names(k, "/api/v1/namespaces/" + name + "/persistentvolumeclaims");
  CHECK(claims == std::vector<std::string>{"data-db-0"});
  if (claims != std::vector<std::string>{"data-db-0"})
    std::cerr << "claims after delete: " << json(claims).dump() << "\n";

  // cleanup: volumes and namespace gone (the test finalizes them), then the record.
  std::future<std::string> cleaned = std::async(std::launch::async, api.cleanup, name);
  play_namespace_deletion(k, name);
  const std::string c = cleaned.get();
  CHECK(c == "gone");
  if (c != "gone") std::cerr << "cleanup: " << c << "\n";
  CHECK(!get(k, "/api/v1/namespaces/" + name));
  CHECK(api.status(name) == "gone");
}

// ---- the C API ----

static std::string c_error(capsa_status st) {
  return std::string("ERROR ") + capsa_status_name(st) + ": " + capsa_last_error_message();
}

/// A staging's status from an out_json, or the error.
static std::string c_status(capsa_status st, char *out) {
  if (st != CAPSA_STATUS_OK) return st == CAPSA_STATUS_NOT_FOUND ? "gone" : c_error(st);
  const json j = json::parse(out);
  capsa_string_free(out);
  return j.is_null() ? "gone" : j["status"].get<std::string>();
}

static Api c_api(capsa_staging_manager *m) {
  Api a;
  a.create = [m](const std::string &name) {
    capsa_override o[2] = {
        {CAPSA_SCOPE_APP, CAPSA_VISIBILITY_PUBLIC, "LOG_LEVEL", "debug"},
        {CAPSA_SCOPE_STAGING, CAPSA_VISIBILITY_PUBLIC, "REPLICAS", "2"},
    };
    char *out = nullptr;
    const capsa_status st = capsa_staging_create(m, name.c_str(), "1.0.0", o, 2, &out);
    return c_status(st, out);
  };
  a.status = [m](const std::string &name) {
    char *out = nullptr;
    const capsa_status st = capsa_staging_get(m, name.c_str(), &out);
    return c_status(st, out);
  };
  a.delete_ = [m](const std::string &name) {
    char *out = nullptr;
    const capsa_status st = capsa_staging_delete(m, name.c_str(), &out);
    return c_status(st, out);
  };
  a.cleanup = [m](const std::string &name) {
    char *out = nullptr;
    const capsa_status st = capsa_staging_cleanup(m, name.c_str(), &out);
    return c_status(st, out);
  };
  a.reconcile = [m]() {
    char *out = nullptr;
    const capsa_status st = capsa_staging_reconcile(m, &out);
    if (st != CAPSA_STATUS_OK) die("reconcile: " + c_error(st));
    json j = json::parse(out);
    capsa_string_free(out);
    return j;
  };
  return a;
}

// ---- the C++ API ----

static Api cpp_api(const capsa::StagingManager &m) {
  auto guarded = [](auto f) {
    try {
      return f();
    } catch (const capsa::Error &e) {
      if (e.code_name() == "NOT_FOUND") return std::string("gone");
      return "ERROR " + e.code_name() + ": " + e.what();
    }
  };
  Api a;
  a.create = [&m, guarded](const std::string &name) {
    return guarded([&] {
      std::vector<capsa::Override> o(2);
      o[0].key = "LOG_LEVEL";
      o[0].value = "debug";
      o[1].scope = capsa::Scope::Staging;
      o[1].key = "REPLICAS";
      o[1].value = "2";
      return m.create(name, "1.0.0", o).status;
    });
  };
  a.status = [&m, guarded](const std::string &name) {
    return guarded([&] { return m.get(name).status; });
  };
  a.delete_ = [&m, guarded](const std::string &name) {
    return guarded([&] { return m.delete_(name).status; });
  };
  a.cleanup = [&m, guarded](const std::string &name) {
    return guarded([&] {
      std::optional<capsa::Staging> s = m.cleanup(name);
      return s ? s->status : std::string("gone");
    });
  };
  a.reconcile = [&m]() { return json::parse(m.reconcile()); };
  return a;
}

int main() {
  const fs::path tmp = fs::temp_directory_path() / ("capsa-k8s-cpp-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  const Kube k = kube_from_env(tmp);
  const std::string tpl = std::string(CAPSA_SOURCE_DIR) + "/../examples/kubernetes";
  const std::string pid = std::to_string(::getpid());

  {
    capsa_staging_manager *m = nullptr;
    const capsa_status st = capsa_staging_manager_open_kubernetes(
        (tmp / "c.db").c_str(), tpl.c_str(), k.kubeconfig.c_str(), &m);
    if (st != CAPSA_STATUS_OK) die("capsa_staging_manager_open_kubernetes: " + c_error(st));
    lifecycle(k, c_api(m), "c-" + pid);
    capsa_staging_manager_free(m);
  }
  {
    // No kubeconfig argument: KUBECONFIG is used.
    const capsa::StagingManager m = capsa::StagingManager::open_kubernetes((tmp / "cpp.db").string(), tpl);
    lifecycle(k, cpp_api(m), "cpp-" + pid);
  }

  fs::remove_all(tmp);
  std::cout << checks - failures << " passed, " << failures << " failed\n";
  return failures == 0 ? 0 : 1;
}
