"""The labeling page in a real browser: Debian's chromium, headless, driven by Playwright, against uvicorn on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator

import pytest
from labeling_service_support import LabelingRun, open_labeling_run
from playwright.sync_api import expect

from al_ray.labeling.service.server import BackgroundServer

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
TIMEOUT_MS = 15_000

pytestmark = pytest.mark.slow


@pytest.fixture
def served_run(tmp_path, mnist) -> Iterator[tuple[LabelingRun, BackgroundServer]]:
    for run in open_labeling_run(f"sqlite:///{tmp_path / 'labels.db'}", mnist):
        with BackgroundServer(run.client.app) as server:
            yield run, server


@pytest.fixture(scope="module")
def browser():
    """One chromium for the module; each test gets its own context, so no storage is shared.

    Without chromium the tests are skipped, except under CI=true, where they
    fail: CI installs it (scripts/system_packages.sh).
    """
    if shutil.which(CHROMIUM) is None:
        message = f"no chromium at {CHROMIUM}; install Debian's chromium package"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    yield page
    context.close()


def sign_in(page, server: BackgroundServer, token: str) -> None:
    page.goto(server.url + "/")
    page.fill("#token", token)
    page.press("#token", "Enter")
    page.wait_for_selector("#labeling:not([hidden])")


def shown_item(page) -> int:
    """Wait for a task to be drawn and return its item id, read from the page's task line."""
    page.wait_for_selector("#row canvas.digit")
    text = page.text_content("#task-meta") or ""
    return int(text.split()[1])


def wait_for_item_change(page, previous: int) -> None:
    page.wait_for_function(
        "previous => { const t = document.getElementById('task-meta').textContent;"
        " return t !== '' && !t.startsWith('Task ' + previous + ' '); }",
        arg=previous,
    )


def test_label_three_digits_and_skip_one_with_keyboard(served_run, page) -> None:
    run, server = served_run
    sign_in(page, server, run.tokens["alice"])

    pressed: dict[int, str] = {}
    for _ in range(3):
        item_id = shown_item(page)
        digit = run.rows.label_of(run.row_of(item_id))
        page.keyboard.press(digit)
        pressed[item_id] = digit
        wait_for_item_change(page, item_id)
    skipped = shown_item(page)
    page.keyboard.press("s")
    wait_for_item_change(page, skipped)
    page.wait_for_function("document.getElementById('progress').textContent.startsWith('3 answered')")

    stored = {row["item_id"]: (row["annotator_id"], row["label"]) for row in run.annotations()}
    assert stored == {item_id: ("alice", digit) for item_id, digit in pressed.items()}
    states = {row["item_id"]: row["state"] for row in run.leases() if row["annotator_id"] == "alice"}
    assert states[skipped] == "skipped"
    assert page.text_content("#progress") == "3 answered · 1 skipped · 2 remaining"


def test_digit_drawn_on_canvas(served_run, page) -> None:
    run, server = served_run
    sign_in(page, server, run.tokens["alice"])
    item_id = shown_item(page)

    # The first task is row 0, a 7: the canvas contains its 784 grey levels.
    drawn = page.evaluate(
        "() => { const c = document.querySelector('#row canvas.digit');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " const out = []; for (let i = 0; i < d.length; i += 4) out.push(d[i]); return out; }"
    )
    assert run.row_of(item_id) == 0
    assert drawn == run.rows.row(0)["pixels"]
    # One button per class, with its key shown.
    labels = page.eval_on_selector_all(".class-button", "buttons => buttons.map(b => b.textContent)")
    assert labels == [f"{digit}{digit}" for digit in range(10)]


def test_escape_skips_and_click_answers(served_run, page) -> None:
    run, server = served_run
    sign_in(page, server, run.tokens["bob"])
    first = shown_item(page)
    page.keyboard.press("Escape")
    wait_for_item_change(page, first)
    second = shown_item(page)

    page.click(".class-button[data-label='2']")
    wait_for_item_change(page, second)

    assert [(row["item_id"], row["annotator_id"], row["label"]) for row in run.annotations()] == [(second, "bob", "2")]


def test_wrong_token_shows_error(served_run, page) -> None:
    _, server = served_run
    page.goto(server.url + "/")
    page.fill("#token", "wrong-token")
    page.press("#token", "Enter")

    page.wait_for_function("document.getElementById('sign-in-error').textContent !== ''")

    assert "not valid" in page.text_content("#sign-in-error")
    assert page.evaluate("sessionStorage.getItem('al_ray.labeling.token')") is None


def test_token_kept_for_tab_not_url(served_run, page) -> None:
    run, server = served_run
    sign_in(page, server, run.tokens["alice"])

    page.reload()
    page.wait_for_selector("#labeling:not([hidden])")

    assert run.tokens["alice"] not in page.url
    assert page.evaluate("sessionStorage.getItem('al_ray.labeling.token')") == run.tokens["alice"]


def test_admin_sees_quality_view(served_run, page) -> None:
    run, server = served_run
    sign_in(page, server, run.tokens["admin"])
    item_id = shown_item(page)
    page.keyboard.press(run.rows.label_of(run.row_of(item_id)))
    wait_for_item_change(page, item_id)

    page.click("#tab-quality")
    page.wait_for_selector("#quality-body table")

    body = page.text_content("#quality-body")
    assert "admin" in body
    assert "alice" in body
    assert "Fleiss' kappa" in body
    assert "fleiss_kappa" not in body
    assert "No pairs yet" in body


def test_annotator_has_no_quality_tab(served_run, page) -> None:
    run, server = served_run
    sign_in(page, server, run.tokens["alice"])

    assert page.is_hidden("#tab-quality")


def wait_for_lease_state(run: LabelingRun, annotator: str, item_id: int, state: str) -> None:
    """Wait until the store shows the annotator's lease on the item in ``state``; the page sends requests on its own."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        states = {(row["item_id"], row["annotator_id"]): row["state"] for row in run.leases()}
        if states.get((item_id, annotator)) == state:
            return
        time.sleep(0.1)
    raise AssertionError(f"the lease of {annotator} on item {item_id} is {states.get((item_id, annotator))}, not {state}")


def test_quality_tab_gives_the_task_back(served_run, page) -> None:
    run, server = served_run
    sign_in(page, server, run.tokens["admin"])
    item_id = shown_item(page)

    page.click("#tab-quality")
    page.wait_for_selector("#quality-body table")

    wait_for_lease_state(run, "admin", item_id, "expired")
    # Another annotator gets the task the admin had open.
    assert run.next_item("alice")["item_id"] == item_id
    # Over a poll interval on the quality view, the admin leases nothing.
    page.wait_for_timeout(5500)
    assert [row["item_id"] for row in run.leases() if row["state"] == "active" and row["annotator_id"] == "admin"] == []


def test_closing_page_gives_the_task_back(served_run, page) -> None:
    run, server = served_run
    sign_in(page, server, run.tokens["alice"])
    item_id = shown_item(page)

    page.goto("about:blank")

    wait_for_lease_state(run, "alice", item_id, "expired")
    assert run.next_item("bob")["item_id"] == item_id


def test_progress_follows_other_annotators(served_run, page) -> None:
    run, server = served_run
    sign_in(page, server, run.tokens["alice"])
    shown_item(page)
    expect(page.locator("#progress")).to_have_text("0 answered · 0 skipped · 6 remaining")

    for number in range(2):
        task = run.next_item("bob")
        response = run.client.post(
            "/api/answers",
            json={"item_id": task["item_id"], "label": "1", "submission_id": f"bob-{number}"},
            headers=run.auth("bob"),
        )
        assert response.status_code == 201

    # Bob answered 2 of the 5 tasks alice does not hold, without alice doing anything.
    expect(page.locator("#progress")).to_have_text("0 answered · 0 skipped · 4 remaining")


def test_error_cleared_when_task_loads(served_run, page) -> None:
    run, server = served_run
    page.route("**/api/next", lambda route: route.abort())
    sign_in(page, server, run.tokens["alice"])
    expect(page.locator("#status")).to_contain_text("cannot be reached")
    expect(page.locator("#status")).to_have_class("status error")

    page.unroute("**/api/next")
    # The page asks again after 5 seconds.
    shown_item(page)

    assert page.text_content("#status") == ""
    expect(page.locator("#status")).to_have_class("status")


def test_error_cleared_after_signing_in_again(served_run, page) -> None:
    run, server = served_run
    sign_in(page, server, run.tokens["alice"])
    shown_item(page)
    page.route("**/api/**", lambda route: route.abort())
    page.keyboard.press("7")
    expect(page.locator("#status")).to_contain_text("cannot be reached")

    page.unroute("**/api/**")
    page.click("#sign-out")
    # Signed in again on the same page, without loading it anew.
    page.fill("#token", run.tokens["alice"])
    page.press("#token", "Enter")
    page.wait_for_selector("#labeling:not([hidden])")
    shown_item(page)

    assert page.text_content("#status") == ""
    assert run.annotations() == []
