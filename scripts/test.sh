#!/usr/bin/env bash
# `make test` (after `make test-deps build`): every test of the workspace.
#
# One test is run beside the others rather than after them: the engine against the reference
# model on 10^5 random sequences (tests/tests/differential.rs,
# `engine_and_model_agree_on_random_sequences`), CPU-bound on every core for about six
# minutes in a debug build. Most of the other tests wait on sockets, child processes and
# timers, so it runs in the background at the lowest CPU priority (nice 19) while they run,
# and takes the cores they leave idle. Its output is printed after theirs; the run fails if
# either fails. BRIDLE_DIFF_SEQUENCES / BRIDLE_DIFF_SEED are passed through.
set -uo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
name=engine_and_model_agree_on_random_sequences

# Build every test target once, with the features `cargo test --workspace` resolves, and
# find the differential test's executable.
exe=$($CARGO test --workspace --no-run --message-format=json-render-diagnostics | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    t = m.get("target") or {}
    if m.get("reason") == "compiler-artifact" and t.get("name") == "differential" and "test" in t.get("kind", []) and m.get("executable"):
        print(m["executable"])
') || { echo "test.sh: building the tests (or reading cargo's list of them) failed" >&2; exit 1; }
[ -x "$exe" ] || { echo "test.sh: no executable for tests/tests/differential.rs" >&2; exit 1; }
# It must name exactly one test: a rename or a move would otherwise run it nowhere.
listed=$("$exe" --exact "$name" --list 2>/dev/null | grep -c ': test$' || true)
[ "$listed" = 1 ] || { echo "test.sh: $exe lists $listed tests named exactly $name, not 1" >&2; exit 1; }

mkdir -p target
log=target/differential-background.log
# As cargo runs a test: from its package's directory.
(cd tests && exec nice -n 19 "$exe" --exact "$name" --nocapture) > "$log" 2>&1 &
bg=$!
trap 'kill $bg 2>/dev/null' INT TERM

# `--exact` makes `--skip` match that name only, not every test whose name contains it.
$CARGO test --workspace --no-fail-fast -- --exact --skip "$name"
main=$?
wait $bg
diff=$?
# And it ran: one test, passed.
if [ $diff = 0 ] && ! grep -q '^test result: ok\. 1 passed' "$log"; then
  echo "test.sh: $name did not report one passed test" >&2
  diff=1
fi
echo
echo "== tests/tests/differential.rs: $name (run beside the others, nice 19; exit $diff)"
cat "$log"
if [ $main != 0 ] || [ $diff != 0 ]; then
  echo "test.sh: FAILED (workspace tests exit $main, $name exit $diff)" >&2
  exit 1
fi
