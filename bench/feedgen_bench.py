#!/usr/bin/env python3
"""Baseline for benches/feeds_render.rs: Python's feedgen rendering the same 50 items.

Usage: python3 bench/feedgen_bench.py ITEMS.json [SECONDS [ROUNDS]]

ITEMS.json is written by `BENCH_ITEMS_OUT=ITEMS.json cargo bench --bench feeds_render`.
The FeedGenerator is built once with every entry (title, link, guid, dates, author as
dc:creator / atom author, summary, content as CDATA content:encoded / atom content,
category and tags, image as enclosure); then rss_str() and atom_str() are each called in
a loop for at least SECONDS (default 2), in ROUNDS (default 3) interleaved rounds, and the
median round's items/s is printed. Only the serialization is
timed, which is the most favourable measurement for feedgen.

The `-min` variants render only id, title, link and content per item (no dates, author,
summary, categories or enclosure): a lighter document than bantin's, reported so the
ratio can also be taken against feedgen's best case.

Output lines: `feedgen <format> <doc bytes> <renders> <items/s> <best items/s> <µs/doc>`.
"""

import json
import subprocess
import sys
import time

try:
    from feedgen.feed import FeedGenerator
except ImportError:  # install it on first use
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "feedgen"])
    from feedgen.feed import FeedGenerator


def build(doc):
    m = doc["meta"]
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)
    fg.id(m["id"])
    fg.title(m["title"])
    fg.subtitle(m["description"])  # also the RSS <description>
    fg.language(m["language"])
    fg.link(href=m["site_url"], rel="alternate", type="text/html")
    fg.author({"name": m["site_name"]})
    fg.generator("feedgen")
    fg.ttl(m["ttl"])
    fg.updated(m["updated"])
    fg.lastBuildDate(m["updated"])
    # feedgen writes feed entries newest first when order="prepend" (the default): add the
    # oldest first so the document order matches bantin's.
    for item in reversed(doc["items"]):
        fe = fg.add_entry()
        fe.id(item["id"])
        fe.guid(item["id"], permalink=False)
        fe.title(item["title"])
        fe.link(href=item["url"], rel="alternate", type="text/html")
        fe.published(item["published"])
        fe.updated(item["updated"])
        if item.get("author"):
            fe.author({"name": item["author"]})
            fe.dc.dc_creator(item["author"])
        if item.get("summary"):
            fe.summary(item["summary"])  # RSS <description>, Atom <summary>
        fe.content(item["content_html"], type="CDATA")
        terms = []
        if item.get("category"):
            terms.append({"term": item["category"]["path"], "label": item["category"]["name"]})
        terms.extend({"term": t} for t in item.get("tags") or [])
        if terms:
            fe.category(terms)
        if item.get("image"):
            fe.enclosure(item["image"], "0", "image/jpeg")
    return fg


def build_minimal(doc):
    """Only what each format requires plus the content: id, title, link, content."""
    m = doc["meta"]
    fg = FeedGenerator()
    fg.id(m["id"])
    fg.title(m["title"])
    fg.subtitle(m["description"])
    fg.link(href=m["site_url"], rel="alternate")
    for item in reversed(doc["items"]):
        fe = fg.add_entry()
        fe.id(item["id"])
        fe.title(item["title"])
        fe.link(href=item["url"])
        fe.content(item["content_html"], type="CDATA")
    return fg


def timed(render, seconds):
    renders = 0
    start = time.perf_counter()
    while True:
        for _ in range(10):
            render()
        renders += 10
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return renders, elapsed


def main():
    path = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    fg = build(doc)
    fg_min = build_minimal(doc)
    n = len(doc["items"])
    from importlib.metadata import version

    print(f"feedgen {version('feedgen')} on Python {sys.version.split()[0]}: {n} items, "
          f"{rounds} rounds of ≥ {seconds} s per format (median round shown)")
    print(f"{'format':<16} {'doc bytes':>10} {'renders':>12} {'items/s':>14} {'best items/s':>14} {'µs/doc':>10}")
    variants = (
        ("rss", lambda: fg.rss_str(pretty=False)),
        ("atom", lambda: fg.atom_str(pretty=False)),
        ("rss-min", lambda: fg_min.rss_str(pretty=False)),
        ("atom-min", lambda: fg_min.atom_str(pretty=False)),
    )
    sizes = {}
    for name, render in variants:
        sizes[name] = len(render())
        for _ in range(5):  # warm up
            render()
    runs = {name: [] for name, _ in variants}
    for _ in range(rounds):  # interleaved, like the Rust bench
        for name, render in variants:
            runs[name].append(timed(render, seconds))
    for name, _ in variants:
        by_rate = sorted(runs[name], key=lambda r: r[0] / r[1])
        renders, elapsed = by_rate[len(by_rate) // 2]
        best = by_rate[-1][0] * n / by_rate[-1][1]
        print(f"feedgen {name:<8} {sizes[name]:>10} {renders:>12} {renders * n / elapsed:>14.0f} {best:>14.0f} "
              f"{elapsed * 1e6 / renders:>10.1f}")


if __name__ == "__main__":
    main()
