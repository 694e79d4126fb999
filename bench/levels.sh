#!/usr/bin/env bash
# Benchmark: hub-levels on a generated 10,000-service, 30,000-edge compose file.
# Run by hand: bench/levels.sh [SERVICES] [EDGES]. Prints wall times; record them in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
services=${1:-10000}
edges=${2:-30000}
cargo build --release -q -p hub-levels
bin=target/release/hub-levels
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$services" "$edges" "$work/compose.json" > "$work/compose.yaml" <<'PY'
import json, random, sys
n, e = int(sys.argv[1]), int(sys.argv[2])
random.seed(42)
deps = [set() for _ in range(n)]
added = 0
while added < e:
    a, b = random.randrange(n), random.randrange(n)
    if a == b:
        continue
    later, earlier = max(a, b), min(a, b)
    if earlier not in deps[later]:
        deps[later].add(earlier)
        added += 1
services = {}
for i in range(n):
    service = {"x-hub": {"run": "sleep 1000", "class": "core", "health": {"tcp": f"127.0.0.1:{1024 + i}"}}}
    if deps[i]:
        service["depends_on"] = [f"s{d}" for d in sorted(deps[i])]
    services[f"s{i}"] = service
with open(sys.argv[3], "w") as out:
    json.dump({"services": services}, out)
print("services:")
for i in range(n):
    print(f"  s{i}:")
    print(f"    x-hub: {{ run: \"sleep 1000\", class: core, health: {{ tcp: \"127.0.0.1:{1024 + i}\" }} }}")
    if deps[i]:
        print("    depends_on: [" + ", ".join(f"s{d}" for d in sorted(deps[i])) + "]")
PY
echo "file: $services services, $edges edges, $(wc -c < "$work/compose.yaml") bytes"
echo "levels: $($bin -f "$work/compose.yaml" --count)"
for input in compose.yaml compose.json; do
for format in json text; do
    best=999999
    for _ in 1 2 3 4 5; do
        start=$(date +%s%N)
        $bin -f "$work/$input" --format $format > /dev/null
        end=$(date +%s%N)
        ms=$(( (end - start) / 1000000 ))
        [ $ms -lt $best ] && best=$ms
    done
    echo "hub-levels -f $input --format $format: best of 5 = ${best} ms"
done
done
if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "peak RSS: %M KiB" $bin -f "$work/compose.yaml" > /dev/null
fi
