# Staging lifecycle demo, sourced by the main demo script with $CAPSA (the capsa binary) and
# $STORE (a fresh store, `capsa init` already run) set. Uses the embedded defaults: the state
# file <store>/.capsa/staging.db and the in-process mock backend.

staging_demo_step() {
    echo
    echo "== staging: $*"
}

staging_demo() {
    "$CAPSA" --store "$STORE" staging "$@" --backend mock
}

staging_demo_step "create web 1.0.0 with a public and a private override"
staging_demo create web --tag 1.0.0 --app GREETING="hello world" \
    --app DB_PASSWORD=hunter2 --private DB_PASSWORD

staging_demo_step "show web (the private value is masked)"
staging_demo show web

staging_demo_step "update web to 1.1.0"
staging_demo update web --tag 1.1.0 --app GREETING="hello again" \
    --app DB_PASSWORD=hunter2 --private DB_PASSWORD

staging_demo_step "update web to 1.2.0 with a backend told to fail (exit code 21 = BACKEND)"
staging_demo update web --tag 1.2.0 --mock-fail update \
    || echo "(capsa exited with $?: the staging is now in Failure, with its reason)"

staging_demo_step "reconcile: the health check answers healthy, Failure -> Running"
staging_demo reconcile --all

staging_demo_step "delete (archive) web"
staging_demo delete web

staging_demo_step "a second delete is refused: it names the status (exit code 17 = INVALID_TRANSITION)"
staging_demo delete web || echo "(capsa exited with $?)"

staging_demo_step "restore web with its last settings"
staging_demo restore web

staging_demo_step "delete and clean up web: the record goes, the audit log stays"
staging_demo delete web
staging_demo cleanup web

staging_demo_step "list"
staging_demo list

staging_demo_step "audit log of web"
staging_demo log web

staging_demo_step "the first events, as 'watch' prints them"
staging_demo watch --from-start --count 6

unset -f staging_demo staging_demo_step
