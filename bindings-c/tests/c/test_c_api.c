/* C tests of the capsa C ABI: the happy path (store, capsules, bump, latest, publish, seal,
 * sequences) and misuse (NULL handles and out-parameters, invalid UTF-8, a capsule used after
 * its store was freed, bad enum values), which must give a status and a message, never a
 * crash. Run under ctest, and under valgrind by the `c_api_valgrind` test. */
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

static char tmp_root[512];

static void path_in(char *buf, size_t len, const char *rel) {
  snprintf(buf, len, "%s/%s", tmp_root, rel);
}

static void write_file(const char *rel, const char *text) {
  char p[1024];
  FILE *f;
  path_in(p, sizeof p, rel);
  f = fopen(p, "w");
  if (f) {
    fputs(text, f);
    fclose(f);
  }
}

static void test_version_and_status_names(void) {
  CHECK(strcmp(capsa_version(), "0.1.0") == 0);
  CHECK(strcmp(capsa_status_name(CAPSA_STATUS_NOT_FOUND), "NOT_FOUND") == 0);
  CHECK(strcmp(capsa_status_name(CAPSA_STATUS_INVALID_NAME), "INVALID_NAME") == 0);
  CHECK(strcmp(capsa_status_name(0), "OK") == 0);
  CHECK(strcmp(capsa_status_name(9999), "UNKNOWN") == 0);
  CHECK(CAPSA_STATUS_NOT_FOUND == 1 && CAPSA_STATUS_TIMEOUT == 16);
}

static void test_store_capsules_crates(void) {
  char store_dir[1024], src[1024];
  capsa_store *store = NULL;
  capsa_capsule *capsule = NULL, *again = NULL;
  capsa_crate *v1 = NULL, *v2 = NULL, *latest = NULL, *got = NULL;
  capsa_string_list *ids = NULL, *versions = NULL;
  capsa_bump_options opts;
  uint32_t carry[1] = {CAPSA_SECTION_SCENES};
  const char *tags[2] = {"anim", "wip"};
  char *s = NULL, *landed = NULL, *meta = NULL;
  bool published = true;
  uint32_t number = 0;

  path_in(store_dir, sizeof store_dir, "store");
  CHECK_OK(capsa_store_init(store_dir, 0, &store));
  CHECK(store != NULL);
  CHECK_OK(capsa_store_padding(store, &number));
  CHECK(number == 3);

  CHECK_OK(capsa_store_create_capsule(store, "656796239c1b981568180614", &capsule));
  CHECK(capsa_store_create_capsule(store, "656796239c1b981568180614", &again) ==
        CAPSA_STATUS_ALREADY_EXISTS);
  CHECK(again == NULL);
  CHECK(capsa_last_error_code() == CAPSA_STATUS_ALREADY_EXISTS);
  CHECK(strstr(capsa_last_error_message(), "already exists") != NULL);

  CHECK(capsa_store_create_capsule(store, "../x", &again) == CAPSA_STATUS_INVALID_NAME);
  CHECK(strlen(capsa_last_error_message()) > 0);

  CHECK_OK(capsa_capsule_id(capsule, &s));
  CHECK(s && strcmp(s, "656796239c1b981568180614") == 0);
  capsa_string_free(s);

  /* No crate yet: latest succeeds with NULL. */
  latest = (capsa_crate *)1;
  CHECK_OK(capsa_capsule_latest(capsule, false, &latest));
  CHECK(latest == NULL);

  memset(&opts, 0, sizeof opts);
  opts.comment = "layout";
  opts.created_by = "tester";
  opts.tags = tags;
  opts.tags_len = 2;
  CHECK_OK(capsa_capsule_bump(capsule, &opts, &v1));
  CHECK_OK(capsa_crate_version(v1, &s));
  CHECK(s && strcmp(s, "v001") == 0);
  capsa_string_free(s);

  /* A scene file carried over and renamed v001 -> v002. */
  {
    char scene[1024];
    CHECK_OK(capsa_crate_section_path(v1, CAPSA_SECTION_SCENES, &s));
    snprintf(scene, sizeof scene, "%s/sh010_v001.ma", s);
    capsa_string_free(s);
    {
      FILE *f = fopen(scene, "w");
      CHECK(f != NULL);
      if (f) {
        fputs("scene", f);
        fclose(f);
      }
    }
  }
  opts.comment = NULL;
  opts.tags = NULL;
  opts.tags_len = 0;
  opts.carry_over = carry;
  opts.carry_over_len = 1;
  CHECK_OK(capsa_capsule_bump(capsule, &opts, &v2));
  CHECK_OK(capsa_crate_version_number(v2, &number));
  CHECK(number == 2);
  {
    char scene[1024];
    struct stat st;
    CHECK_OK(capsa_crate_section_path(v2, CAPSA_SECTION_SCENES, &s));
    snprintf(scene, sizeof scene, "%s/sh010_v002.ma", s);
    capsa_string_free(s);
    CHECK(stat(scene, &st) == 0);
  }

  CHECK_OK(capsa_capsule_crates(capsule, &versions));
  CHECK(capsa_string_list_len(versions) == 2);
  CHECK(strcmp(capsa_string_list_get(versions, 0), "v001") == 0);
  CHECK(strcmp(capsa_string_list_get(versions, 1), "v002") == 0);
  CHECK(capsa_string_list_get(versions, 2) == NULL);
  capsa_string_list_free(versions);

  CHECK_OK(capsa_capsule_latest(capsule, false, &latest));
  CHECK_OK(capsa_crate_version(latest, &s));
  CHECK(s && strcmp(s, "v002") == 0);
  capsa_string_free(s);
  capsa_crate_free(latest);
  latest = NULL;

  /* Publish, seal, latest published. */
  write_file("review.mov", "movie");
  path_in(src, sizeof src, "review.mov");
  CHECK_OK(capsa_crate_publish(v2, src, "final/review.mov", &landed));
  CHECK(landed && strstr(landed, "publishes/final/review.mov") != NULL);
  capsa_string_free(landed);
  CHECK(capsa_crate_publish(v2, src, "final/review.mov", NULL) == CAPSA_STATUS_ALREADY_EXISTS);
  CHECK_OK(capsa_crate_is_published(v2, &published));
  CHECK(!published);
  CHECK_OK(capsa_capsule_latest(capsule, true, &latest));
  CHECK(latest == NULL);
  CHECK_OK(capsa_crate_seal(v2));
  CHECK_OK(capsa_crate_is_published(v2, &published));
  CHECK(published);
  CHECK(capsa_crate_set_comment(v2, "late") == CAPSA_STATUS_SEALED);
  CHECK(capsa_crate_publish(v2, src, "again.mov", NULL) == CAPSA_STATUS_SEALED);
  CHECK_OK(capsa_capsule_latest(capsule, true, &latest));
  CHECK_OK(capsa_crate_version(latest, &s));
  CHECK(s && strcmp(s, "v002") == 0);
  capsa_string_free(s);

  CHECK_OK(capsa_crate_metadata_json(v1, &meta));
  CHECK(meta && strstr(meta, "\"comment\":\"layout\"") != NULL);
  CHECK(meta && strstr(meta, "\"anim\"") != NULL);
  capsa_string_free(meta);

  CHECK_OK(capsa_capsule_get(capsule, "v2", &got));
  CHECK_OK(capsa_crate_version(got, &s));
  CHECK(s && strcmp(s, "v002") == 0);
  capsa_string_free(s);
  capsa_crate_free(got);
  got = NULL;
  CHECK(capsa_capsule_get(capsule, "v9", &got) == CAPSA_STATUS_NOT_FOUND);
  CHECK(capsa_capsule_get(capsule, "x9", &got) == CAPSA_STATUS_INVALID_VERSION);
  CHECK(got == NULL);

  CHECK_OK(capsa_store_capsules(store, &ids));
  CHECK(capsa_string_list_len(ids) == 1);
  capsa_string_list_free(ids);

  {
    size_t problems = 99;
    CHECK_OK(capsa_store_fsck(store, false, &problems));
    CHECK(problems == 0);
  }

  /* Reopen by path. */
  {
    capsa_store *reopened = NULL;
    capsa_capsule *c2 = NULL;
    CHECK_OK(capsa_store_open(store_dir, &reopened));
    CHECK_OK(capsa_store_capsule(reopened, "656796239c1b981568180614", &c2));
    CHECK(capsa_store_capsule(reopened, "nothere", &again) == CAPSA_STATUS_NOT_FOUND);
    capsa_capsule_free(c2);
    capsa_store_free(reopened);
  }
  {
    capsa_store *none = NULL;
    CHECK(capsa_store_open(tmp_root, &none) == CAPSA_STATUS_INVALID_STORE);
    CHECK(none == NULL);
  }

  capsa_crate_free(v1);
  capsa_crate_free(v2);
  capsa_crate_free(latest);
  capsa_capsule_free(capsule);
  capsa_store_free(store);
}

static void test_sequences(void) {
  capsa_sequence *seq = NULL;
  capsa_sequence_list *list = NULL;
  capsa_frameset *fs = NULL;
  const char *names[5] = {"plate.1001.exr", "plate.1002.exr", "plate.1004.exr", "notes.txt",
                          "shot_v001.exr"};
  char *s = NULL;
  size_t n = 0;
  int64_t frames[8];

  CHECK_OK(capsa_sequence_parse("plate.1001-1003#.exr", &seq));
  CHECK_OK(capsa_sequence_head(seq, &s));
  CHECK(s && strcmp(s, "plate.") == 0);
  capsa_string_free(s);
  CHECK_OK(capsa_sequence_format(seq, CAPSA_PAD_STYLE_PRINTF, &s));
  CHECK(s && strcmp(s, "plate.%04d.exr 1001-1003") == 0);
  capsa_string_free(s);
  CHECK_OK(capsa_sequence_path(seq, 7, &s));
  CHECK(s && strcmp(s, "plate.0007.exr") == 0);
  capsa_string_free(s);
  CHECK_OK(capsa_sequence_frame_count(seq, &n));
  CHECK(n == 3);
  CHECK(capsa_sequence_format(seq, 42, &s) == CAPSA_STATUS_INVALID_ARGUMENT);
  CHECK(s == NULL);
  capsa_sequence_free(seq);

  CHECK(capsa_sequence_parse("plate.5-1x0#.exr", &seq) == CAPSA_STATUS_INVALID_SEQUENCE);
  CHECK(seq == NULL);

  CHECK_OK(capsa_sequences_in(names, 5, &list));
  CHECK(capsa_sequence_list_len(list) == 1);
  CHECK_OK(capsa_sequence_format(capsa_sequence_list_get(list, 0), CAPSA_PAD_STYLE_HASH, &s));
  CHECK(s && strcmp(s, "plate.1001-1002,1004#.exr") == 0);
  capsa_string_free(s);
  CHECK_OK(capsa_sequence_missing(capsa_sequence_list_get(list, 0), &s));
  CHECK(s && strcmp(s, "1003") == 0);
  capsa_string_free(s);
  CHECK(capsa_sequence_list_get(list, 1) == NULL);
  capsa_sequence_list_free(list);

  CHECK_OK(capsa_frameset_parse("1-10x3,-2", &fs));
  CHECK_OK(capsa_frameset_len(fs, &n));
  CHECK(n == 5);
  CHECK_OK(capsa_frameset_frames(fs, frames, 8, &n));
  CHECK(n == 5 && frames[0] == -2 && frames[1] == 1 && frames[4] == 10);
  CHECK_OK(capsa_frameset_text(fs, &s));
  CHECK(s != NULL);
  capsa_string_free(s);
  capsa_frameset_free(fs);

  {
    uint32_t kind = 99, num = 0;
    CHECK_OK(capsa_capsule_id_validate("656796239c1b981568180614", &kind));
    CHECK(kind == CAPSA_ID_KIND_OBJECT_ID);
    CHECK(capsa_capsule_id_validate(".hidden", &kind) == CAPSA_STATUS_INVALID_NAME);
    CHECK_OK(capsa_crate_version_parse("v0042", &num));
    CHECK(num == 42);
    CHECK_OK(capsa_crate_version_format(1000, 3, &s));
    CHECK(s && strcmp(s, "v1000") == 0);
    capsa_string_free(s);
  }
}

static void test_misuse(void) {
  char store_dir[1024];
  capsa_store *store = NULL;
  capsa_capsule *capsule = NULL, *c2 = NULL;
  capsa_crate *k = NULL;
  char *s = NULL;
  const char bad_utf8[] = {'a', (char)0xff, (char)0xfe, 'b', 0};

  /* NULL handles, arguments and out-parameters. */
  CHECK(capsa_store_open(NULL, &store) == CAPSA_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(capsa_last_error_message(), "NULL") != NULL);
  CHECK(capsa_store_open("x", NULL) == CAPSA_STATUS_INVALID_ARGUMENT);
  CHECK(capsa_store_create_capsule(NULL, "a", &capsule) == CAPSA_STATUS_INVALID_ARGUMENT);
  CHECK(capsa_capsule_bump(NULL, NULL, &k) == CAPSA_STATUS_INVALID_ARGUMENT);
  CHECK(capsa_crate_seal(NULL) == CAPSA_STATUS_INVALID_ARGUMENT);
  CHECK(capsa_crate_version(NULL, &s) == CAPSA_STATUS_INVALID_ARGUMENT);
  CHECK(capsa_sequence_format(NULL, 0, &s) == CAPSA_STATUS_INVALID_ARGUMENT);
  CHECK(capsa_sequences_in(NULL, 3, NULL) == CAPSA_STATUS_INVALID_ARGUMENT);
  CHECK(capsa_string_list_len(NULL) == 0);
  CHECK(capsa_string_list_get(NULL, 0) == NULL);
  CHECK(capsa_sequence_list_get(NULL, 0) == NULL);
  capsa_store_free(NULL);
  capsa_capsule_free(NULL);
  capsa_crate_free(NULL);
  capsa_string_free(NULL);
  capsa_string_list_free(NULL);
  capsa_sequence_free(NULL);
  capsa_sequence_list_free(NULL);
  capsa_frameset_free(NULL);

  /* A success clears the last error. */
  CHECK(capsa_crate_version_parse("v1", &(uint32_t){0}) == CAPSA_STATUS_OK);
  CHECK(capsa_last_error_code() == CAPSA_STATUS_OK);
  CHECK(strcmp(capsa_last_error_message(), "") == 0);

  path_in(store_dir, sizeof store_dir, "misuse");
  CHECK_OK(capsa_store_init(store_dir, 4, &store));

  /* Invalid UTF-8 in a string argument. */
  CHECK(capsa_store_create_capsule(store, bad_utf8, &capsule) == CAPSA_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(capsa_last_error_message(), "UTF-8") != NULL);
  CHECK(capsule == NULL);
  CHECK(capsa_sequence_parse(bad_utf8, NULL) == CAPSA_STATUS_INVALID_ARGUMENT);

  /* A bad enum value and a NULL array with a length. */
  CHECK_OK(capsa_store_create_capsule(store, "shot010", &capsule));
  {
    capsa_bump_options o;
    uint32_t bad[1] = {7};
    memset(&o, 0, sizeof o);
    o.carry_over = bad;
    o.carry_over_len = 1;
    CHECK(capsa_capsule_bump(capsule, &o, &k) == CAPSA_STATUS_INVALID_ARGUMENT);
    o.carry_over = NULL;
    CHECK(capsa_capsule_bump(capsule, &o, &k) == CAPSA_STATUS_INVALID_ARGUMENT);
    o.carry_over_len = 0;
    o.comment = bad_utf8;
    CHECK(capsa_capsule_bump(capsule, &o, &k) == CAPSA_STATUS_INVALID_ARGUMENT);
    CHECK(k == NULL);
  }

  /* A capsule handle used after its store was freed keeps working. */
  capsa_store_free(store);
  store = NULL;
  CHECK_OK(capsa_capsule_bump(capsule, NULL, &k));
  CHECK_OK(capsa_crate_version(k, &s));
  CHECK(s && strcmp(s, "v0001") == 0);
  capsa_string_free(s);
  capsa_crate_free(k);
  k = NULL;
  /* Even after its directory is gone: an error, not a crash. */
  {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/shot010'", store_dir);
    CHECK(system(cmd) == 0);
  }
  CHECK(capsa_capsule_bump(capsule, NULL, &k) == CAPSA_STATUS_NOT_FOUND);
  CHECK(capsa_capsule_latest(capsule, false, &k) != CAPSA_STATUS_OK ||
        k == NULL);
  capsa_crate_free(k);
  capsa_capsule_free(capsule);
  capsa_capsule_free(c2);
}

/* Last errors are per thread: nothing else to test without threads in C99 portably. */

int main(void) {
  char tmpl[] = "/tmp/capsa-c-test-XXXXXX";
  char cmd[1200];
  if (!mkdtemp(tmpl)) {
    perror("mkdtemp");
    return 2;
  }
  snprintf(tmp_root, sizeof tmp_root, "%s", tmpl);

  test_version_and_status_names();
  test_store_capsules_crates();
  test_sequences();
  test_misuse();

  snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' && rm -rf '%s'", tmp_root, tmp_root);
  if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmp_root);
  printf("%d checks, %d failures\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
