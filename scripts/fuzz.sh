#!/usr/bin/env bash
# Runs every fuzz target of the wire codec for SECONDS each (default 60), one after the
# other, on stable Rust (cargo fuzz run -s none). Seeds come from the golden captures.
# A crash leaves its input under crates/wire/fuzz/artifacts/<target>/ and fails the script;
# turn it into a regression test in crates/wire/tests/ before fixing.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
shift || true
command -v cargo-fuzz >/dev/null || cargo install --locked --quiet cargo-fuzz

fuzz_dir=crates/wire/fuzz
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(cd crates/wire && cargo fuzz list)
fi
corpus_root=$PWD/$fuzz_dir/corpus
cargo run -q -p igmpd-wire --example fuzz_seeds -- "$corpus_root"

failed=0
for t in "${targets[@]}"; do
    mkdir -p "$corpus_root/$t"
    echo "fuzz: $t for ${secs}s"
    log=$(mktemp)
    if (cd crates/wire && cargo fuzz run -s none "$t" "$corpus_root/$t" -- \
            -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048) >"$log" 2>&1; then
        runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
        cov=$(grep -E '#[0-9]+.*(DONE|pulse).*cov:' "$log" | tail -n1 | sed -E 's/.*cov: ([0-9]+).*/\1/')
        echo "fuzz: $t ok: ${runs:-?} runs, cov ${cov:-?}, corpus $(ls "$corpus_root/$t" | wc -l)"
    else
        echo "fuzz: $t FAILED; log follows" >&2
        tail -n 40 "$log" >&2
        failed=1
    fi
    rm -f "$log"
done
exit "$failed"
