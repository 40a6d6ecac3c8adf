#!/usr/bin/env bash
# Feed benchmarks: rendering, serving and freshness.
#
# 1. Rendering (benches/feeds_render.rs vs bench/feedgen_bench.py): one 50-item page with
#    ~3 KB of Vietnamese HTML per item, rendered by FeedFormat::render as RSS, Atom and
#    JSON Feed, and the same items rendered by Python's feedgen (rss_str/atom_str) in the
#    same run. Target: bantin ≥ 5× feedgen's items/s (feedgen ≈ 46,000 items/s on the
#    2-core bench machine, so ≥ 230,000 items/s).
# 2. Serving: `bantin serve` with a ~200 KB /feeds/all.rss (50 items) against nginx
#    serving the same bytes as a static file, `wrk -t2 -c64 -d10s`, keep-alive HTTP/1.1,
#    side by side. 200s and 304s (If-None-Match with each server's own ETag — nginx
#    answers If-None-Match with 304 for its "mtime-size" ETag, so both get the same kind
#    of conditional request). Target: bantin ≥ 0.9× nginx's requests/s for both. nginx runs
#    with Debian's stock static-file settings (sendfile on, keep-alive, access_log off);
#    a second nginx with sendfile off is measured on 200s for reference. Server CPU time
#    per request is reported too, as the machine may be shared.
# 3. Freshness (benches/feeds_live.rs): from the ingest API's 2xx for a published article
#    until it is in all 12 affected documents (all, its category, the parent category,
#    its author; RSS, Atom, JSON), on SQLite, with archives of 1,000 and 100,000 articles.
#    Targets: p99 ≤ 50 ms, and the same cost for both archive sizes.
#
# Everything listens on 127.0.0.1 only. Needs root for apt-get (wrk, nginx, only when
# missing) and runs nginx from a temp config on a free port.
# Settings: BENCH_WRK_ROUNDS (default 3: each server measured that many times,
# interleaved; the best round of each is compared, the median ratio is shown too), BENCH_ARCHIVE / BENCH_SAMPLES / BENCH_GAP_MS (passed to
# feeds_live), BENCH_SKIP (comma list of render,serve,fresh).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${BENCH_WRK_ROUNDS:-3}
skip=",${BENCH_SKIP:-},"
work=$(mktemp -d /tmp/bantin-feeds-bench.XXXXXX)
chmod 755 "$work"
bantin_pid=""
nginx_pid=""
nosf_pid=""

stop_pid() { # pid, signal: signals the process and waits up to 30 s for it to go
    local pid=$1 sig=$2
    kill "-$sig" "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "process $pid did not stop on SIG$sig; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

# Long steps run in their own process group (setsid) and are waited for, so a signal to
# this script runs the trap at once and the whole step (cargo, the bench, its servers)
# is stopped with it.
step_pid=""
run() { # command...: runs it in its own process group and waits
    setsid "$@" &
    step_pid=$!
    wait "$step_pid"
    step_pid=""
}

cleanup() {
    if [ -n "$step_pid" ]; then kill -TERM -- "-$step_pid" 2>/dev/null || true; step_pid=""; fi
    if [ -n "$bantin_pid" ]; then stop_pid "$bantin_pid" TERM; bantin_pid=""; fi
    if [ -n "$nginx_pid" ]; then stop_pid "$nginx_pid" QUIT; nginx_pid=""; fi
    if [ -n "$nosf_pid" ]; then stop_pid "$nosf_pid" QUIT; nosf_pid=""; fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

header_of() { # url, header name [, extra curl args]: the header's value from a HEAD request
    local url=$1 name=$2
    shift 2
    curl -sS -o /dev/null -D - -I "$@" "$url" | tr -d '\r' | awk -v n="$(echo "$name" | tr 'A-Z' 'a-z')" \
        'BEGIN { FS = ": " } tolower($1) == n { sub(/^[^:]*: /, ""); print; exit }'
}

status_of() { # url [curl args]
    local url=$1
    shift
    curl -sS -o /dev/null -w '%{http_code}' "$@" "$url"
}

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# --- tools ----------------------------------------------------------------------------
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    # The package may start its own nginx (port 80, all interfaces): stop it.
    if [ -s /run/nginx.pid ]; then /usr/sbin/nginx -s quit 2>/dev/null || true; fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
python3 -c 'import feedgen' 2>/dev/null || python3 -m pip install -q feedgen

echo "== building the benches (release profile)" >&2
run cargo bench --bench feeds_render --bench feeds_live --no-run

# --- 1. rendering ---------------------------------------------------------------------
if [[ $skip != *,render,* ]]; then
    echo "== 1. rendering: bantin vs feedgen, same 50 items" >&2
    run env BENCH_ITEMS_OUT="$work/items.json" bash -c 'set -o pipefail; cargo bench --bench feeds_render | tee "$1"' \
        _ "$work/render.txt"
    run bash -c 'set -o pipefail; python3 bench/feedgen_bench.py "$1" | tee "$2"' _ "$work/items.json" "$work/feedgen.txt"
    python3 - "$work/render.txt" "$work/feedgen.txt" <<'EOF' | tee "$work/render-summary.txt"
import sys
bantin = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) >= 4 and f[0] in ("rss", "atom", "json"):
        bantin[f[0]] = float(f[3])
feedgen = {}
for line in open(sys.argv[2]):
    f = line.split()
    if len(f) >= 5 and f[0] == "feedgen" and f[1] in ("rss", "atom", "rss-min", "atom-min"):
        feedgen[f[1]] = float(f[4])
best_name, best = max(feedgen.items(), key=lambda kv: kv[1])
print()
print("rendering, items/s (same 50 items, same run)")
print(f"{'format':<6} {'bantin':>10} {'feedgen':>10} {'ratio':>7} {'vs best feedgen':>16} {'≥230k':>6} {'≥5×':>4}")
for fmt, rate in bantin.items():
    # JSON has no feedgen counterpart: compared with feedgen's faster full format.
    base = feedgen.get(fmt, max(feedgen.get("rss", 0), feedgen.get("atom", 0)))
    ok_abs = "yes" if rate >= 230_000 else "NO"
    ok_rel = "yes" if rate >= 5 * best else "NO"
    print(f"{fmt:<6} {rate:>10.0f} {base:>10.0f} {rate / base:>6.1f}× {rate / best:>15.1f}× {ok_abs:>6} {ok_rel:>4}")
print(f"(best feedgen figure: {best:.0f} items/s, its {best_name} variant; '-min' = id, title, link and content only)")
EOF
fi

# --- 2. serving: bantin vs nginx --------------------------------------------------------
if [[ $skip != *,serve,* ]]; then
    echo "== 2. serving: bantin vs nginx, wrk -t2 -c64 -d10s" >&2
    mkdir -p "$work/bantin" "$work/www/feeds" "$work/nginx"
    bantin_port=$(free_port)
    run env BENCH_MODE=serve BENCH_DIR="$work/bantin" BENCH_LISTEN="127.0.0.1:$bantin_port" \
        bash -c 'set -o pipefail; cargo bench --bench feeds_live | tee "$1"' _ "$work/serve.txt"
    bantin_pid=$(sed -n 's/^pid=//p' "$work/serve.txt")
    address=$(sed -n 's/^address=//p' "$work/serve.txt")
    feed=$(sed -n 's/^feed=//p' "$work/serve.txt")
    bantin_url="http://$address$feed"
    # The builder works in the background: wait until the document stops changing.
    previous=""
    for _ in $(seq 1 120); do
        etag=$(header_of "$bantin_url" etag)
        [ -n "$etag" ] && [ "$etag" = "$previous" ] && break
        previous=$etag
        sleep 1
    done
    bantin_etag=$(header_of "$bantin_url" etag)
    curl -sS -o "$work/www$feed" "$bantin_url"
    chmod -R a+rX "$work/www"
    size=$(stat -c %s "$work/www$feed")

    nginx_conf() { # name, port, sendfile on|off
        local name=$1 port=$2 sendfile=$3
        mkdir -p "$work/$name"
        cat > "$work/$name/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $work/$name/nginx.pid;
error_log $work/$name/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile $sendfile;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path $work/$name/body;
    proxy_temp_path $work/$name/proxy;
    fastcgi_temp_path $work/$name/fastcgi;
    uwsgi_temp_path $work/$name/uwsgi;
    scgi_temp_path $work/$name/scgi;
    types { application/rss+xml rss; }
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$port;
        root $work/www;
        etag on;
    }
}
EOF
    }
    wait_200() {
        for _ in $(seq 1 100); do
            [ "$(status_of "$1" 2>/dev/null || true)" = 200 ] && return 0
            sleep 0.1
        done
        echo "$1 does not answer" >&2
        return 1
    }
    # nginx as a static file server, with Debian's stock settings (sendfile on) ...
    nginx_port=$(free_port)
    nginx_conf nginx "$nginx_port" on
    "$NGINX" -c "$work/nginx/nginx.conf" -p "$work/nginx" &
    nginx_pid=$!
    nginx_url="http://127.0.0.1:$nginx_port$feed"
    wait_200 "$nginx_url"
    # ... and, for reference on 200s only, with sendfile off (the body copied through user
    # space, as bantin does).
    nosf_port=$(free_port)
    nginx_conf nginx-nosf "$nosf_port" off
    "$NGINX" -c "$work/nginx-nosf/nginx.conf" -p "$work/nginx-nosf" &
    nosf_pid=$!
    nosf_url="http://127.0.0.1:$nosf_port$feed"
    wait_200 "$nosf_url"
    nginx_etag=$(header_of "$nginx_url" etag)
    cmp -s <(curl -sS "$bantin_url") <(curl -sS "$nginx_url") || { echo "nginx and bantin bytes differ" >&2; exit 1; }
    for pair in "$bantin_url|$bantin_etag" "$nginx_url|$nginx_etag"; do
        code=$(status_of "${pair%%|*}" -H "If-None-Match: ${pair#*|}")
        [ "$code" = 304 ] || { echo "${pair%%|*} answers If-None-Match: ${pair#*|} with $code, not 304" >&2; exit 1; }
    done
    echo "document: $feed, $size bytes, identical from both; bantin ETag $bantin_etag, nginx ETag $nginx_etag"

    clk_tck=$(getconf CLK_TCK)
    cpu_ticks() { # pids...: user + system clock ticks of the processes (all their threads)
        local total=0 pid t
        for pid in "$@"; do
            t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
            total=$((total + t))
        done
        echo "$total"
    }
    nginx_pids=("$nginx_pid" $(ps -o pid= --ppid "$nginx_pid"))
    nosf_pids=("$nosf_pid" $(ps -o pid= --ppid "$nosf_pid"))
    # One wrk run: appends "kind server round req/s requests server-cpu-seconds p99" to results.
    measure() { # kind server round
        local kind=$1 server=$2 round=$3 url etag pids before after out
        case $server in
            bantin) url=$bantin_url etag=$bantin_etag pids=("$bantin_pid") ;;
            nginx) url=$nginx_url etag=$nginx_etag pids=("${nginx_pids[@]}") ;;
            nginx-nosf) url=$nosf_url etag="" pids=("${nosf_pids[@]}") ;;
        esac
        local args=()
        [ "$kind" = 304 ] && args=(-H "If-None-Match: $etag")
        out="$work/wrk-$server-$kind-$round.txt"
        before=$(cpu_ticks "${pids[@]}")
        wrk -t2 -c64 -d10s --latency "${args[@]}" "$url" > "$out"
        after=$(cpu_ticks "${pids[@]}")
        if grep -q -E 'Socket errors|Non-2xx' "$out"; then
            grep -E 'Socket errors|Non-2xx' "$out" | sed "s/^/  $server $kind: /" >&2
        fi
        awk -v k="$kind" -v s="$server" -v r="$round" -v cpu="$(( after - before ))" -v hz="$clk_tck" '
            /^Requests\/sec:/ { rate = $2 }
            / requests in / { n = $1 }
            $1 == "99%" { p99 = $2 }
            END { printf "%s %s %s %s %s %.2f %s\n", k, s, r, rate, n, cpu / hz, p99 }' "$out" | tee -a "$work/wrk-results.txt" |
            awk '{ printf "  %s %-10s round %s: %10.0f requests/s, server CPU %5.2f s, p99 %s\n", $1, $2, $3, $4, $6, $7 }' >&2
    }
    : > "$work/wrk-results.txt"
    for kind in 200 304; do
        for server in bantin nginx; do # warm-up
            if [ "$server" = bantin ]; then url=$bantin_url etag=$bantin_etag; else url=$nginx_url etag=$nginx_etag; fi
            args=()
            [ "$kind" = 304 ] && args=(-H "If-None-Match: $etag")
            wrk -t2 -c64 -d2s "${args[@]}" "$url" > /dev/null
        done
        for round in $(seq 1 "$rounds"); do
            measure "$kind" bantin "$round"
            measure "$kind" nginx "$round"
            if [ "$kind" = 200 ]; then measure "$kind" nginx-nosf "$round"; fi
        done
    done
    echo
    echo "serving $feed ($size bytes), wrk -t2 -c64 -d10s, keep-alive HTTP/1.1, $rounds interleaved round(s) each"
    python3 - "$work/wrk-results.txt" <<'PY' | tee "$work/serve-summary.txt"
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
def pick(kind, server):
    return [r for r in rows if r[0] == kind and r[1] == server]
print(f"{'response':<30} {'bantin req/s':>13} {'nginx req/s':>12} {'ratio':>7} {'≥0.9×':>6} | {'median ratio':>12} | "
      f"{'req per server CPU-s':>24} | {'p99 bantin/nginx':>18}")
for kind, label in (("200", "200 (full body)"), ("304", "304 (If-None-Match, own ETag)")):
    b, n = pick(kind, "bantin"), pick(kind, "nginx")
    if not b or not n:
        continue
    best = lambda rs: max(rs, key=lambda r: float(r[3]))
    bb, nb = best(b), best(n)
    ratio = float(bb[3]) / float(nb[3])
    median = statistics.median(float(x[3]) for x in b) / statistics.median(float(x[3]) for x in n)
    eff = lambda rs: sum(float(r[4]) for r in rs) / max(sum(float(r[5]) for r in rs), 1e-9)
    eb, en = eff(b), eff(n)
    print(f"{label:<30} {float(bb[3]):>13.0f} {float(nb[3]):>12.0f} {ratio:>6.2f}× {'yes' if ratio >= 0.9 else 'NO':>6} | "
          f"{median:>11.2f}× | {eb:>8.0f} vs {en:>8.0f} ({eb / en:.2f}×) | {bb[6]:>8} / {nb[6]:<8}")
nosf = pick("200", "nginx-nosf")
if nosf:
    best_nosf = max(float(r[3]) for r in nosf)
    best_b = max(float(r[3]) for r in pick("200", "bantin"))
    print(f"{'200 vs nginx sendfile off':<30} {best_b:>13.0f} {best_nosf:>12.0f} {best_b / best_nosf:>6.2f}×  (reference only)")
print("(best round of each server; 'req per server CPU-s' = requests served per CPU-second the server used,")
print(" summed over rounds: less sensitive to other load on the machine)")
PY
    stop_pid "$bantin_pid" TERM; bantin_pid=""
    stop_pid "$nginx_pid" QUIT; nginx_pid=""
    stop_pid "$nosf_pid" QUIT; nosf_pid=""
fi

# --- 3. freshness -----------------------------------------------------------------------
if [[ $skip != *,fresh,* ]]; then
    echo "== 3. freshness on SQLite, archives of ${BENCH_ARCHIVE:-1000,100000} articles" >&2
    run env -u BENCH_MODE bash -c 'set -o pipefail; cargo bench --bench feeds_live | tee "$1"' _ "$work/fresh.txt"
fi

echo
echo "== summary"
for f in render-summary serve-summary; do
    [ -f "$work/$f.txt" ] && cat "$work/$f.txt"
done
[ -f "$work/fresh.txt" ] && sed -n '/^freshness (ms/,$p' "$work/fresh.txt"
exit 0
