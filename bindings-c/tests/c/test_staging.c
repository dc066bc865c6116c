/* C tests of stagings: the lifecycle on the mock backend, events through a subscription with
 * user_data, a callback that returns an error (the subscription stops and says so), invalid
 * transitions, private values masked, misuse. */
#define _POSIX_C_SOURCE 200809L
#include "capsa.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                                     \
  do {                                                                                  \
    ++checks;                                                                           \
    if (!(cond)) {                                                                      \
      ++failures;                                                                       \
      fprintf(stderr, "%s:%d: CHECK failed: %s (last error %u %s: %s)\n", __FILE__,    \
              __LINE__, #cond, (unsigned)capsa_last_error_code(),                       \
              capsa_status_name(capsa_last_error_code()), capsa_last_error_message()); \
    }                                                                                   \
  } while (0)
#define CHECK_OK(expr) CHECK((expr) == CAPSA_STATUS_OK)

struct events {
  int count;
  int status_changes;
  char last_to[64];
  char seen[2048];
  int refuse_at; /* return an error on this event number (0: never) */
};

static int32_t on_event(const capsa_staging_event *e, void *user_data) {
  struct events *ev = (struct events *)user_data;
  ev->count++;
  if (strcmp(e->event, "StatusChanged") == 0) {
    ev->status_changes++;
    snprintf(ev->last_to, sizeof ev->last_to, "%s", e->to ? e->to : "(gone)");
  }
  if (strlen(ev->seen) + strlen(e->json) + 2 < sizeof ev->seen) {
    strcat(ev->seen, e->json);
    strcat(ev->seen, "\n");
  }
  if (ev->refuse_at > 0 && ev->count >= ev->refuse_at) return -1;
  return 0;
}

int main(void) {
  char root[] = "/tmp/capsa-c-staging-XXXXXX";
  char state[512], cmd[600];
  capsa_staging_manager *m = NULL;
  capsa_subscription *sub = NULL, *sub2 = NULL;
  struct events ev, ev2;
  capsa_override o[2];
  char *json = NULL;
  uint32_t status = 99;

  memset(&ev, 0, sizeof ev);
  memset(&ev2, 0, sizeof ev2);
  ev2.refuse_at = 1;
  if (!mkdtemp(root)) return 2;
  snprintf(state, sizeof state, "%s/staging.db", root);

  CHECK_OK(capsa_staging_manager_open_mock(state, &m));
  CHECK_OK(capsa_staging_subscribe(m, on_event, &ev, &sub));
  CHECK_OK(capsa_staging_subscribe(m, on_event, &ev2, &sub2));

  o[0].scope = CAPSA_SCOPE_APP;
  o[0].visibility = CAPSA_VISIBILITY_PUBLIC;
  o[0].key = "GREETING";
  o[0].value = "hello";
  o[1].scope = CAPSA_SCOPE_APP;
  o[1].visibility = CAPSA_VISIBILITY_PRIVATE;
  o[1].key = "DB_PASSWORD";
  o[1].value = "hunter2";
  CHECK_OK(capsa_staging_create(m, "web", "1.0.0", o, 2, &json));
  CHECK(json && strstr(json, "\"Running\"") != NULL);
  CHECK(json && strstr(json, "hunter2") == NULL);
  capsa_string_free(json);
  json = NULL;
  CHECK_OK(capsa_staging_get_status(m, "web", &status));
  CHECK(status == CAPSA_STAGING_STATUS_RUNNING);
  CHECK(ev.status_changes >= 2); /* CreatePending, Running */
  CHECK(strcmp(ev.last_to, "Running") == 0);
  CHECK(strstr(ev.seen, "hunter2") == NULL);

  /* The refusing callback stopped after its first event, and says so. */
  CHECK(ev2.count == 1);
  CHECK(capsa_subscription_error(sub2) == CAPSA_STATUS_CANCELLED);
  CHECK(strstr(capsa_last_error_message(), "returned -1") != NULL);
  CHECK_OK(capsa_subscription_error(sub));

  /* Transitions. */
  CHECK(capsa_staging_create(m, "web", "1.0.0", NULL, 0, NULL) != CAPSA_STATUS_OK);
  CHECK(capsa_staging_restore(m, "web", NULL) == CAPSA_STATUS_INVALID_TRANSITION);
  CHECK(strstr(capsa_last_error_message(), "Running") != NULL);
  CHECK_OK(capsa_staging_update(m, "web", "1.1.0", NULL, 0, &json));
  CHECK(json && strstr(json, "1.1.0") != NULL);
  capsa_string_free(json);
  json = NULL;
  CHECK_OK(capsa_staging_delete(m, "web", NULL));
  CHECK_OK(capsa_staging_get_status(m, "web", &status));
  CHECK(status == CAPSA_STAGING_STATUS_ARCHIVED);
  CHECK_OK(capsa_staging_restore(m, "web", NULL));
  CHECK_OK(capsa_staging_delete(m, "web", NULL));
  CHECK_OK(capsa_staging_list(m, &json));
  CHECK(json && strstr(json, "\"web\"") != NULL);
  capsa_string_free(json);
  json = NULL;
  CHECK_OK(capsa_staging_reconcile(m, NULL));
  CHECK_OK(capsa_staging_audit_log(m, "web", 0, &json));
  CHECK(json && strstr(json, "\"create\"") != NULL && strstr(json, "hunter2") == NULL);
  capsa_string_free(json);
  json = NULL;
  CHECK_OK(capsa_staging_events_since(m, 0, 0, &json));
  CHECK(json && strstr(json, "StatusChanged") != NULL && strstr(json, "hunter2") == NULL);
  capsa_string_free(json);
  json = NULL;
  CHECK_OK(capsa_staging_clean_archived(m, &json));
  CHECK(json && strcmp(json, "[]") == 0);
  capsa_string_free(json);
  json = NULL;
  CHECK_OK(capsa_staging_cleanup(m, "web", &json));
  CHECK(json && strcmp(json, "null") == 0);
  capsa_string_free(json);
  json = NULL;
  CHECK(capsa_staging_get(m, "web", &json) == CAPSA_STATUS_NOT_FOUND);
  CHECK(json == NULL);
  CHECK(strcmp(ev.last_to, "(gone)") == 0);

  /* Misuse. */
  CHECK(capsa_staging_create(NULL, "web", "1", NULL, 0, NULL) == CAPSA_STATUS_INVALID_ARGUMENT);
  CHECK(capsa_staging_create(m, "web", "1", NULL, 3, NULL) == CAPSA_STATUS_INVALID_ARGUMENT);
  o[0].scope = 9;
  CHECK(capsa_staging_create(m, "api", "1", o, 1, NULL) == CAPSA_STATUS_INVALID_ARGUMENT);
  CHECK(capsa_staging_create(m, "Bad Name!", "1", NULL, 0, NULL) == CAPSA_STATUS_INVALID_NAME);
  {
    capsa_subscription *none = (capsa_subscription *)1;
    CHECK(capsa_staging_subscribe(m, NULL, NULL, &none) == CAPSA_STATUS_INVALID_ARGUMENT);
    CHECK(none == NULL);
  }
  {
    capsa_staging_manager *m2 = (capsa_staging_manager *)1;
    CHECK(capsa_staging_manager_open_script(state, "/nonexistent-dir", &m2) ==
          CAPSA_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(capsa_last_error_message(), "script directory /nonexistent-dir does not exist") != NULL);
    CHECK(m2 == NULL);
  }
  {
    /* One opening for every binding: a backend named as the CLI names it, options as JSON. */
    capsa_staging_manager *m3 = NULL;
    char state3[560];
    snprintf(state3, sizeof state3, "%s/opened.db", root);
    CHECK_OK(capsa_staging_manager_open(state3, "mock", "{\"actor\": \"ana\"}", &m3));
    CHECK_OK(capsa_staging_create(m3, "api", "2.0.0", NULL, 0, NULL));
    CHECK_OK(capsa_staging_audit_log(m3, NULL, 0, &json));
    CHECK(json && strstr(json, "\"ana\"") != NULL);
    capsa_string_free(json);
    json = NULL;
    capsa_staging_manager_free(m3);
    m3 = (capsa_staging_manager *)1;
    CHECK(capsa_staging_manager_open(state3, "helm:x", NULL, &m3) == CAPSA_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(capsa_last_error_message(), "expected `mock`") != NULL);
    CHECK(m3 == NULL);
    CHECK(capsa_staging_manager_open(state3, "mock", "{\"pending_timeout\": 1}", &m3) ==
          CAPSA_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(capsa_last_error_message(), "unknown field `pending_timeout`") != NULL);
    CHECK(capsa_staging_manager_open(state3, "mock", "not json", &m3) == CAPSA_STATUS_INVALID_ARGUMENT);
  }
  {
    /* The Kubernetes backend's bad input, before any cluster is asked: a missing or empty
       template is INVALID_ARGUMENT, an unreadable kubeconfig BACKEND (the lifecycle runs
       against a real API server in tests/k8s/test_kubernetes.cpp, make test-k8s). */
    capsa_staging_manager *m2 = (capsa_staging_manager *)1;
    char tpl[560], file[600];
    FILE *f;
    CHECK(capsa_staging_manager_open_kubernetes(state, "/nonexistent-dir", NULL, &m2) ==
          CAPSA_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(capsa_last_error_message(), "/nonexistent-dir") != NULL);
    CHECK(m2 == NULL);
    CHECK(capsa_staging_manager_open_kubernetes(state, root, NULL, &m2) == CAPSA_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(capsa_last_error_message(), "no Kubernetes manifest") != NULL);
    snprintf(tpl, sizeof tpl, "%s/template", root);
    CHECK(mkdir(tpl, 0700) == 0);
    snprintf(file, sizeof file, "%s/cm.yaml", tpl);
    f = fopen(file, "w");
    CHECK(f != NULL);
    if (f) {
      fputs("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n", f);
      fclose(f);
    }
    CHECK(capsa_staging_manager_open_kubernetes(state, tpl, "/nonexistent/kubeconfig", &m2) ==
          CAPSA_STATUS_BACKEND);
    CHECK(strstr(capsa_last_error_message(), "/nonexistent/kubeconfig") != NULL);
    CHECK(capsa_staging_manager_open_kubernetes(state, NULL, NULL, &m2) == CAPSA_STATUS_INVALID_ARGUMENT);
    CHECK(m2 == NULL);
  }
  CHECK(capsa_subscription_error(NULL) == CAPSA_STATUS_INVALID_ARGUMENT);
  {
    /* The mock backend scripted with JSON commands: a queued failure, the call log, misuse. */
    capsa_staging_manager *m4 = NULL, *m5 = NULL;
    char state4[560];
    snprintf(state4, sizeof state4, "%s/mock.db", root);
    CHECK_OK(capsa_staging_manager_open(state4, "mock", NULL, &m4));
    CHECK_OK(capsa_staging_mock_control(m4, "{\"push\": \"create\", \"outcome\": \"failed\", "
                                            "\"reason\": \"boom\"}", NULL));
    CHECK_OK(capsa_staging_create(m4, "web", "1.0.0", NULL, 0, &json));
    CHECK(json && strstr(json, "\"Failure\"") != NULL && strstr(json, "boom") != NULL);
    capsa_string_free(json);
    json = NULL;
    CHECK_OK(capsa_staging_mock_control(m4, "{\"count\": \"create\"}", &json));
    CHECK(json && strcmp(json, "1") == 0);
    capsa_string_free(json);
    json = NULL;
    CHECK_OK(capsa_staging_mock_control(m4, "{\"calls\": true}", &json));
    CHECK(json && strcmp(json, "[[\"tag_check\",\"web\"],[\"create\",\"web\"]]") == 0);
    capsa_string_free(json);
    json = NULL;
    CHECK_OK(capsa_staging_mock_control(m4, "{\"clear_calls\": true}", &json));
    CHECK(json && strcmp(json, "null") == 0);
    capsa_string_free(json);
    json = (char *)1;
    CHECK(capsa_staging_mock_control(m4, "{\"hold\": \"deploy\"}", &json) == CAPSA_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(capsa_last_error_message(), "\"deploy\"") != NULL);
    CHECK(json == NULL);
    CHECK(capsa_staging_mock_control(m4, "{\"hold\"", NULL) == CAPSA_STATUS_INVALID_ARGUMENT);
    CHECK(capsa_staging_mock_control(m4, NULL, NULL) == CAPSA_STATUS_INVALID_ARGUMENT);
    CHECK(capsa_staging_mock_control(NULL, "{\"calls\": true}", NULL) == CAPSA_STATUS_INVALID_ARGUMENT);
    CHECK_OK(capsa_staging_manager_open_script(state4, root, &m5));
    CHECK(capsa_staging_mock_control(m5, "{\"calls\": true}", NULL) == CAPSA_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(capsa_last_error_message(), "not mock") != NULL);
    capsa_staging_manager_free(m5);
    capsa_staging_manager_free(m4);
  }

  /* Subscriptions are safe to free after their manager. */
  capsa_staging_manager_free(m);
  capsa_subscription_free(sub);
  capsa_subscription_free(sub2);
  capsa_subscription_free(NULL);
  capsa_staging_manager_free(NULL);

  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", root);
  printf("%d checks, %d failures\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
