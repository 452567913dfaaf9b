"""The real demo server driven by headless Debian Chromium (Playwright; no browser download).

Starts `python -m omni_mer.demo --backend lite` on 127.0.0.1 with a free port in a subprocess, uploads
samples/en_happy_review.mp4, waits for the label and the explanation chart, asks follow-up questions (English, then
Chinese after switching the UI language), saves full-page screenshots (printed paths; also copied to
docs/demo_screenshot.png and docs/demo_screenshot_summary.png when OMNI_MER_SAVE_SCREENSHOT=1), uploads a bad file
and expects a readable message. Also asserts the page made no request off this machine.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "en_happy_review.mp4"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
LABEL_RE = re.compile(r"\b(SNEG|WNEG|NEUT|WPOS|SPOS)\b")
STARTUP_S = 120  # import gradio + load ASR/text/prosody/face models on a busy 2-core machine

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (apt-get install chromium)"),
    pytest.mark.timeout(300),
]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The demo as a separate process, exactly as `omni-mer demo` runs it; yields its URL."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("demo_server") / "server.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "omni_mer.demo", "--backend", "lite", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    t0 = time.monotonic()
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"demo server exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() - t0 > STARTUP_S:
                pytest.fail(f"demo server not up after {STARTUP_S} s:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.5)
        print(f"\ndemo server up in {time.monotonic() - t0:.1f} s at {url} (log: {log_path})")
        yield url, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_upload_label_chart_and_follow_up(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, log_path = server
    host = urlparse(url).hostname
    off_machine: list[str] = []
    shot = tmp_path / "demo_screenshot.png"
    shot_top = tmp_path / "demo_screenshot_summary.png"
    t0 = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.on("request", lambda req: off_machine.append(req.url)
                    if urlparse(req.url).scheme in ("http", "https", "ws", "wss")
                    and urlparse(req.url).hostname not in (host, "localhost") else None)
            page.goto(url, wait_until="domcontentloaded")
            upload = page.locator("#upload-video input[type=file]")
            upload.wait_for(state="attached", timeout=30_000)
            upload.set_input_files(str(SAMPLE))

            # The label: gr.Label heading and the chat summary both name one of the five codes.
            label_box = page.locator("#label-output")
            expect(label_box).to_contain_text(LABEL_RE, timeout=90_000)
            chat = page.locator("#chatbot")
            expect(chat).to_contain_text("Label:", timeout=10_000)
            label = LABEL_RE.search(label_box.inner_text()).group(1)

            # The explanation chart: an <img> that has actually loaded.
            img = page.locator("#explanation-chart img")
            expect(img).to_be_visible(timeout=20_000)
            page.wait_for_function("el => el.complete && el.naturalWidth > 400", arg=img.element_handle(),
                                   timeout=20_000)
            t_result = time.monotonic() - t0

            # A follow-up question typed into the box.
            box = page.locator("#question textarea")
            box.fill("what did the voice do?")
            box.press("Enter")
            expect(chat).to_contain_text(re.compile(r"How it was said|No usable voice"), timeout=20_000)
            # A suggested question (button).
            page.locator("#sugg-q_most").click()
            expect(chat).to_contain_text("mattered most", timeout=20_000)

            # Switch the UI to Chinese: labels change and answers come in Chinese.
            page.get_by_label("中文").check()
            expect(page.locator("#ask")).to_have_text("提问", timeout=10_000)
            box.fill("为什么不是消极？")
            box.press("Enter")
            expect(chat).to_contain_text(re.compile(r"模型给消极的概率|它就是消极"), timeout=20_000)
            page.get_by_label("English").check()
            expect(page.locator("#ask")).to_have_text("Ask", timeout=10_000)
            page.wait_for_timeout(300)

            page.screenshot(path=str(shot), full_page=True)
            # Second view: the chat scrolled back to the first answer (label, probability bars, rationale).
            page.evaluate("""() => { const log = document.querySelector('#chatbot [role="log"]');
                                     if (log) log.scrollTop = 0; }""")
            page.wait_for_timeout(400)
            page.screenshot(path=str(shot_top), full_page=True)

            # A bad file (text named .mp4) gets a readable message in the chat, not a stack trace.
            bad = tmp_path / "notes.mp4"
            bad.write_text("this is not a video\n" * 50)
            page.locator("#clear").click()  # empties the chat and the video player, so the upload input returns
            upload.wait_for(state="attached", timeout=10_000)
            upload.set_input_files(str(bad))
            expect(chat).to_contain_text("could not be read: not a media file", timeout=20_000)
            assert "Traceback" not in chat.inner_text()
        finally:
            browser.close()
    print(f"\nlabel {label}; result after {t_result:.1f} s; whole browser run {time.monotonic() - t0:.1f} s")
    print(f"screenshot: {shot}")
    print(f"screenshot (chat scrolled to the first answer): {shot_top}")
    if os.environ.get("OMNI_MER_SAVE_SCREENSHOT") == "1":
        docs = ROOT / "docs"
        docs.mkdir(parents=True, exist_ok=True)
        for src in (shot, shot_top):
            shutil.copyfile(src, docs / src.name)
            print(f"screenshot copied to {docs / src.name}")
    assert shot.stat().st_size > 10_000
    assert not off_machine, f"the page requested resources off this machine: {off_machine[:5]}"
    server_log = log_path.read_text()
    assert "Traceback" not in server_log, server_log[-3000:]
