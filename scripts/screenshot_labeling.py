"""Take the screenshot of the labeling page for docs/labeling.md.

The script builds a throwaway run of MNIST digits in a temporary folder
(a SQLite label store with 40 round-1 tasks and one annotator, who has
already answered 6 of them), serves the labeling page with uvicorn on
127.0.0.1, opens it in headless chromium, enters the token and saves the page
with the next digit on it.

Run:  .venv/bin/python scripts/screenshot_labeling.py [--out docs/images/labeling-page.png]

It needs chromium at /usr/bin/chromium (Debian's package) and the Playwright
Python package; it never downloads a browser.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import uuid
from pathlib import Path

from al_ray.data import load_shipped
from al_ray.labeling.config import LabelingConfig
from al_ray.labeling.queue import LabelQueue
from al_ray.labeling.service import RowSource, create_app
from al_ray.labeling.service.server import BackgroundServer
from al_ray.labels import LabelStore

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
N_TASKS = 40
N_ANSWERED = 6
# Tasks are handed out in posting order, so after the 6 answers the page shows row 24, a 4.
FIRST_ROW = 18


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "images" / "labeling-page.png", help="PNG file to write"
    )
    parser.add_argument("--width", type=int, default=1100, help="browser viewport width, in CSS pixels")
    parser.add_argument("--height", type=int, default=620, help="browser viewport height, in CSS pixels")
    return parser


def prepare(store: LabelStore) -> tuple[LabelQueue, RowSource, LabelingConfig, str]:
    """Post and enqueue the tasks, add the annotator and answer the first tasks as they would."""
    data = load_shipped("mnist_test")
    rows = RowSource(data)
    config = LabelingConfig()
    row_ids = list(range(FIRST_ROW, FIRST_ROW + N_TASKS))
    store.begin_round(1)
    store.post_tasks(1, row_ids)
    store.mark_round_queried(1)
    queue = LabelQueue(store, rows.classes, config)
    queue.enqueue(store.tasks(round_index=1))
    token = queue.add_annotator("alice")
    for _ in range(N_ANSWERED):
        task = queue.next_task("alice")
        assert task is not None  # 40 tasks were enqueued
        queue.submit("alice", task.item_id, rows.label_of(task.row_id), uuid.uuid4().hex)
    return queue, rows, config, token


def screenshot(url: str, token: str, out: Path, width: int, height: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
            page.goto(url + "/")
            page.fill("#token", token)
            page.press("#token", "Enter")
            page.wait_for_selector("#row canvas.digit")
            page.wait_for_function("document.getElementById('progress').textContent !== ''")
            temporary = out.with_name(f".{out.name}.{os.getpid()}.png")
            page.screenshot(path=str(temporary), full_page=True)
            os.replace(temporary, out)
        finally:
            browser.close()


def main() -> None:
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.WARNING)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="labeling_screenshot_") as folder,
        LabelStore(Path(folder) / "labels.db") as store,
    ):
        queue, rows, config, token = prepare(store)
        with BackgroundServer(create_app(queue, rows, config)) as server:
            screenshot(server.url, token, args.out, args.width, args.height)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
