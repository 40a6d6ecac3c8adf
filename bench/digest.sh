#!/usr/bin/env bash
# Digest delivery benchmark: BENCH_SUBSCRIBERS (default 100,000) confirmed subscribers of
# the demo list "Bản tin sáng", BENCH_ARTICLES (default 7) new articles with images and
# Vietnamese summaries (a digest of about 20 KB as sent), delivered by
# `bantin digest run` to Postfix's smtp-sink on loopback; in the same run smtp-source
# pushes the same number of messages of the same size to the same sink, as the yardstick.
#
# Target: bantin at least 0.5x smtp-source's messages/s, peak memory (VmHWM) under 150 MB.
# Also reported on its own: the time to set up the run (enqueueing every delivery).
#
# Installs postfix (for smtp-sink and smtp-source) with apt when missing. SQLite by default;
# BENCH_DATABASE_URL=postgres://… runs it on PostgreSQL (the database must be empty).
set -euo pipefail
cd "$(dirname "$0")/.."

subscribers=${BENCH_SUBSCRIBERS:-100000}
connections=${BENCH_SMTP_CONNECTIONS:-8}
articles=${BENCH_ARTICLES:-7}

if ! command -v smtp-sink >/dev/null || ! command -v smtp-source >/dev/null; then
    echo "== installing postfix (smtp-sink, smtp-source)" >&2
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
    # Only the two test tools are wanted, not a running mail server.
    $sudo systemctl disable --now postfix >/dev/null 2>&1 || $sudo postfix stop >/dev/null 2>&1 || true
fi
PATH="$PATH:/usr/sbin"

echo "== building bantin (release)" >&2
cargo build --release --quiet
bantin=$PWD/target/release/bantin

work=$(mktemp -d /tmp/bantin-digest-bench.XXXXXX)
sink_pid=""
cleanup() {
    [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"

export BANTIN_DATA_DIR="$work/data"
export BANTIN_DATABASE_URL=${BENCH_DATABASE_URL:-sqlite://$work/data/bantin.db}
export BANTIN_BASE_URL=https://tin.hiephoa.example
export BANTIN_SITE_NAME="Tin Hiệp Hòa"
export RUST_LOG=warn

echo "== setting up: demo content, $subscribers subscribers, $articles new articles" >&2
"$bantin" demo >/dev/null
python3 - "$work" "$subscribers" "$articles" <<'PY'
import json, sys, datetime
work, n, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(f"{work}/subscribers.csv", "w") as f:
    f.write("email,name\n")
    for i in range(n):
        f.write(f"ban.doc.{i}@xa{i % 97}.hiephoa.example,Bạn đọc số {i}\n")
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
paragraph = ("Sáng nay, Ủy ban nhân dân huyện Hiệp Hòa tổ chức hội nghị tổng kết công tác năm, "
             "đánh giá kết quả phát triển kinh tế, xã hội và đề ra nhiệm vụ trọng tâm cho năm tới. ")
categories = [["Tin Tức", "Kinh tế"], ["Tin Tức", "Xã hội"], ["Đời sống"], ["Thể thao"]]
articles = [{
    "id": f"bench-{i}",
    "title": f"Hiệp Hòa: tin mới số {i} về nông nghiệp, giao thông và đời sống người dân",
    "url": f"https://tin.hiephoa.example/bai-viet/bench-{i}",
    "summary": paragraph * 2,
    "content_text": paragraph * 20,
    "image": f"https://tin.hiephoa.example/anh/bench-{i}.jpg",
    "category": categories[i % len(categories)],
    "author": "Phóng viên Hiệp Hòa",
    "published_at": (now - datetime.timedelta(seconds=count - i)).isoformat(),
} for i in range(count)]
json.dump(articles, open(f"{work}/articles.json", "w"), ensure_ascii=False)
PY
"$bantin" subscribers import "$work/subscribers.csv" --list ban-tin-sang --confirmed >/dev/null
sleep 1
"$bantin" import "$work/articles.json" >/dev/null 2>&1
sleep 1

"$bantin" digest preview --list ban-tin-sang --email ban.doc.0@xa0.hiephoa.example --out "$work/preview" >/dev/null
size=$(stat -c %s "$work"/preview/*.eml | head -1)
echo "== one digest is $size bytes (.eml)" >&2

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sink_user=nobody
[ "$(id -u)" = 0 ] || sink_user=$(id -un)
smtp-sink -u "$sink_user" "127.0.0.1:$port" 1024 &
sink_pid=$!
sleep 0.5

echo "== smtp-source: $subscribers messages of $size bytes over $connections sessions" >&2
start=$(date +%s.%N)
smtp-source -s "$connections" -m "$subscribers" -l "$size" -f bench@hiephoa.example -t sink@hiephoa.example "127.0.0.1:$port"
end=$(date +%s.%N)
source_rate=$(python3 -c "print(round($subscribers / ($end - $start)))")

echo "== bantin digest run: $subscribers digests over $connections SMTP connections" >&2
export BANTIN_SMTP_URL="smtp://127.0.0.1:$port"
export BANTIN_SMTP_CONNECTIONS=$connections
start=$(date +%s.%N)
"$bantin" digest run --list ban-tin-sang >"$work/run.txt" 2>"$work/run.err" &
run_pid=$!
peak=0
while kill -0 "$run_pid" 2>/dev/null; do
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$run_pid/status" 2>/dev/null || echo 0)
    [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
    sleep 0.2
done
wait "$run_pid"
end=$(date +%s.%N)
cat "$work/run.txt" >&2
enqueue_ms=$(grep -oE 'queued in [0-9]+ ms' "$work/run.err" | grep -oE '[0-9]+' || echo "?")
sent=$(grep -oE '[0-9]+ sent' "$work/run.txt" | grep -oE '[0-9]+')
total_s=$(python3 -c "print(round($end - $start, 1))")
send_rate=$(python3 -c "e='$enqueue_ms'; t=$end-$start-(int(e)/1000 if e.isdigit() else 0); print(round($sent / t))")

echo
echo "| measure | value |"
echo "|---|---|"
echo "| digest size | $size bytes |"
echo "| smtp-source to smtp-sink | $source_rate msg/s |"
echo "| bantin: enqueue $subscribers deliveries | $enqueue_ms ms |"
echo "| bantin: send (after enqueue) | $send_rate msg/s ($(python3 -c "print(round($send_rate / $source_rate, 2))")x smtp-source) |"
echo "| bantin: whole run | $total_s s, $sent sent |"
echo "| bantin: peak memory (VmHWM) | $((peak / 1024)) MB |"
