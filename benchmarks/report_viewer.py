"""How fast does a large report open? Writes a run report with N samples and times it in headless Chromium.

    python benchmarks/report_viewer.py [--n 20000] [--chromium /usr/bin/chromium]

The samples are synthetic (random words, several task kinds, long prompts) so the figure
measures the page, not a model. "Usable" is the moment the viewer has decoded the embedded
JSON and drawn the first page of samples (``<html data-viewer="ready">``); the script also
times a full-text search and a filter over all samples. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from aligngoals.report import write_report
from aligngoals.report.schema import SCHEMA_VERSION

WORDS = ("the model answer question value harmful request refuse assistant helpful honest because people "
         "should would never always child friend money work law safety privacy truth kind fair rule "
         "norm choice option prefer better worse story moral situation action help hurt").split()


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def synthetic_samples(n: int, seed: int = 0) -> list[dict]:
    """``n`` samples over several task kinds, shaped as aligngoals.report.samples writes them."""
    rng = random.Random(seed)
    tasks = [("bbq", "multiple_choice"), ("truthfulqa_gen", "generate"), ("norms_level1", "norms"),
             ("safety_attacks", "safety"), ("survey:schwartz:rating", "questionnaire")]
    out = []
    for i in range(n):
        task, kind = tasks[i % len(tasks)]
        ok = rng.random() < 0.6
        s = {"task": task, "id": f"{task}-{i}", "kind": kind, "input": _text(rng, rng.randint(40, 160)),
             "output": _text(rng, rng.randint(5, 60)), "choices": None, "reference": _text(rng, 8),
             "scores": {"acc": float(ok)}, "score": float(ok), "metric": "acc", "correct": ok,
             "confidence": rng.random(), "groups": {"category": rng.choice(["Age", "Gender", "Religion", "Race"])},
             "fields": []}
        if kind == "multiple_choice":
            s["choices"] = [{"text": _text(rng, 4), "logprob": -rng.random() * 10, "picked": j == 0, "gold": j == int(not ok)}
                            for j in range(3)]
        out.append(s)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--repeat", type=int, default=3, help="Page loads to time (the best and the median are printed).")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    samples = synthetic_samples(args.n)
    report = {"schema_version": SCHEMA_VERSION, "aligngoals_version": "benchmark",
              "model": {"name": "synthetic", "backend": "none"},
              "run": {"id": "viewer-benchmark", "dir": "", "started": "", "finished": "", "wall_s": 0.0,
                      "requests_cached": 0, "requests_computed": 0},
              "settings": {}, "tasks": {}, "sections": {}, "packages": {}}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        _, html = write_report(report, tmp, samples=samples)
        write_s = time.perf_counter() - t0
        size_mb = html.stat().st_size / 1e6
        print(f"wrote report.html with {args.n} samples: {size_mb:.1f} MB in {write_s:.2f} s")
        loads, parsed, in_page = [], [], []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"])
            for _ in range(args.repeat):
                page = browser.new_page()
                t0 = time.perf_counter()
                page.goto(Path(html).as_uri())
                page.wait_for_selector("html[data-viewer=ready]", timeout=30000)
                loads.append(time.perf_counter() - t0)
                parsed.append(page.evaluate("performance.getEntriesByType('navigation')[0].domInteractive") / 1000)
                in_page.append(int(page.get_attribute("html", "data-ready-ms")) / 1000)
                shown = page.locator("#v-list details.sample").count()
            t0 = time.perf_counter()
            page.fill("#f-search", "privacy truth kind")
            page.wait_for_function("document.querySelector('#v-count').textContent.includes(' of ')")
            search_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            page.select_option("#f-outcome", "incorrect")
            filter_s = time.perf_counter() - t0
            count = page.text_content("#v-count")
            browser.close()
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    print(f"open until usable (first {shown} samples drawn), {args.n} samples, {len(loads)} loads:")
    print(f"  in the page (navigation start to ready): best {min(in_page):.2f} s, median {med(in_page):.2f} s")
    print(f"  wall clock seen by the test driver:      best {min(loads):.2f} s, median {med(loads):.2f} s")
    print(f"  of which HTML parsing (domInteractive):  median {med(parsed):.2f} s")
    print(f"first full-text search {search_s:.2f} s, outcome filter {filter_s:.2f} s ({count})")
    return 0 if med(in_page) < 3.0 else 1


if __name__ == "__main__":
    sys.exit(main())
