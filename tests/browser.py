"""Driving what students and instructors see in a real browser: the system's Chromium through Playwright.

No browser is ever downloaded (``playwright install`` cannot work offline): Playwright launches the
Chromium that the system's package manager installed (``.ci/run`` installs Debian's ``chromium``).
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
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


def chromium() -> str:
    """The system's Chromium; outside CI a missing one skips the browser tests, in CI it fails them."""
    for candidate in (os.environ.get("INTERPLAB_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and Path(candidate).is_file():
            return candidate
    message = "no Chromium found: install it (Debian: apt-get install chromium) or set INTERPLAB_CHROMIUM"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def browser_page(viewport=(1400, 1000)) -> Iterator:
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.set_default_timeout(120_000)
            yield page
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_command(root: Path) -> list[str]:
    """The command `make lab` starts JupyterLab with (read from the Makefile, so the test cannot drift from it)."""
    dry = subprocess.run(["make", "-n", "lab"], cwd=root, capture_output=True, text=True, check=True).stdout
    line = next(line for line in dry.splitlines() if re.search(r"\bjupyter lab\b", line))
    words = line.split()
    words[0] = str(Path(sys.executable).parent / "jupyter")  # this test's environment, wherever it is
    return words


@contextmanager
def jupyter_lab(command: list[str], cwd: Path, log: Path, settings: Path) -> Iterator[str]:
    """JupyterLab started with ``command`` in ``cwd``, headless, on a free port; yields its URL with the token."""
    port, token = free_port(), "interplab-test"
    settings.mkdir(parents=True, exist_ok=True)
    # Render every cell (JupyterLab 4 otherwise only renders those on screen) and ask no news question.
    notebook = settings / "@jupyterlab" / "notebook-extension"
    notebook.mkdir(parents=True, exist_ok=True)
    (notebook / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    news = settings / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True, exist_ok=True)
    (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1",
           "HF_HUB_OFFLINE": "1", "INTERPLAB_TIER": "cpu", "JUPYTERLAB_SETTINGS_DIR": str(settings)}
    args = [*command, "--no-browser", f"--port={port}", f"--ServerApp.token={token}", "--ServerApp.open_browser=False"]
    with log.open("w") as out:
        server = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start: {log.read_text()[-2000:]}")
                time.sleep(0.5)
        yield f"{url}?token={token}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def url_of(base: str, path: str) -> str:
    """``base`` is the server's URL with its token; ``path`` e.g. ``/lab/tree/x.ipynb``."""
    server, token = base.split("?token=")
    return f"{server}{path}{'&' if '?' in path else '?'}token={token}"


class Notebook:
    """One notebook open in JupyterLab, driven the way a student does: menus, keys, typing."""

    def __init__(self, page, base: str, path: str):
        self.page = page
        self.dialogs: list[str] = []
        page.goto(url_of(base, f"/lab/tree/{path}?reset"))
        page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for()
        self.kernel_ready()

    def kernel_ready(self, timeout_s: float = 180) -> None:
        """Wait until a kernel has started and is idle.

        The status bar says "idle" before any kernel exists, so the toolbar's kernel name must also name one. On a
        loaded machine JupyterLab may fail to start the notebook's kernel by itself and ask, in a "Select Kernel"
        dialog, which to start: accept its choice (the notebook's own kernel), as a student would.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.close_dialogs()
            name = self.page.locator(".jp-NotebookPanel-toolbar .jp-Toolbar-kernelName").all_inner_texts()
            idle = self.page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count() > 0
            if idle and name and name[0].strip() not in ("", "No Kernel", "Kernel"):
                return
            self.page.wait_for_timeout(500)
        raise TimeoutError(f"no kernel was idle after {timeout_s} s (kernel: {name}); dialogs: {self.dialogs}")

    def run_all(self, attempts: int = 3) -> None:
        """Run ▸ Run All Cells, then see the first cells start. A dialog JupyterLab opens after the kernel is ready
        can still take the click (the notebook then sits idle, and would look done): answer it, click again, and say
        so if the notebook never starts."""
        for _ in range(attempts):
            self.kernel_ready()
            self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
            if self._started(timeout_s=60):
                return
        raise RuntimeError(f"Run All Cells did not start the notebook, {attempts} times; dialogs: {self.dialogs}")

    def close_dialogs(self) -> None:
        """Answer any modal dialog JupyterLab opened, which would swallow the next click: "Select Kernel" with its
        own choice (the notebook's kernel), any other with Escape (cancel, the least action). What each said is kept
        in ``dialogs`` and printed, so a failing test shows it."""
        dialog = self.page.locator(".jp-Dialog")
        for _ in range(5):  # a dialog that neither answer closes is left to fail the next click, with its text kept
            if not dialog.count():
                return
            self.dialogs.append(dialog.first.inner_text())
            print("JupyterLab dialog answered:", self.dialogs[-1])
            if self.dialogs[-1].startswith("Select Kernel"):
                dialog.first.locator(".jp-Dialog-button.jp-mod-accept").click()
            else:
                self.page.keyboard.press("Escape")
            self.page.wait_for_timeout(500)

    def _started(self, timeout_s: float) -> bool:
        """Whether some code cell shows ``[*]`` (running or queued) or ``[n]`` (run) within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            prompts = self.page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
            if any(re.search(r"\[(\*|\d+)\]", p) for p in prompts):
                return True
            self.page.wait_for_timeout(500)
        return False

    def wait_until_done(self, timeout_s: float = 600) -> None:
        """Until no cell is queued or running (no ``[*]`` prompt) and the kernel is idle."""
        deadline = time.monotonic() + timeout_s
        self.page.wait_for_timeout(1000)
        while time.monotonic() < deadline:
            busy = [p for p in self.page.locator(".jp-Cell .jp-InputPrompt").all_inner_texts() if "*" in p]
            idle = self.page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count() > 0
            if not busy and idle:
                return
            self.page.wait_for_timeout(1000)
        raise TimeoutError(f"the notebook was still running after {timeout_s} s")

    def cell(self, containing: str):
        """The code cell whose source contains ``containing``."""
        return self.page.locator(".jp-CodeCell", has=self.page.locator(".cm-content", has_text=containing)).first

    def type_into(self, cell, source: str) -> None:
        """Replace a cell's source by typing, as a student would."""
        editor = cell.locator(".cm-content")
        editor.click()
        self.page.keyboard.press("Control+A")
        self.page.keyboard.press("Delete")
        self.page.keyboard.insert_text(source)
        self.page.keyboard.press("Escape")  # back to command mode

    def run(self, cell) -> None:
        """Run one cell (Ctrl+Enter) and wait for it."""
        cell.locator(".jp-InputArea-prompt").click()
        self.page.keyboard.press("Control+Enter")
        self.wait_until_done()

    def outputs_text(self, cell) -> str:
        return "\n".join(cell.locator(".jp-OutputArea-output").all_inner_texts())

    def errors(self) -> list[str]:
        """The text of every error a cell raised (tracebacks render as stderr-typed outputs)."""
        return self.page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()

    def save(self) -> None:
        self.page.keyboard.press("Control+S")
        self.page.wait_for_timeout(1500)


def canvas_ink(page, container) -> list[int]:
    """For each ``<canvas>`` inside ``container``: how many of its pixels are neither blank nor white."""
    return page.evaluate(
        """(el) => Array.from(el.querySelectorAll('canvas')).map(c => {
            if (!c.width || !c.height) return 0;
            const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let ink = 0;
            for (let i = 0; i < data.length; i += 4)
                if (data[i + 3] > 0 && (data[i] < 250 || data[i + 1] < 250 || data[i + 2] < 250)) ink++;
            return ink;
        })""",
        container.element_handle(),
    )


def inked(page, container, canvases: int, timeout_s: float = 600) -> list[int]:
    """``canvas_ink`` once ``container`` holds at least ``canvases`` canvases, each drawn on.

    A page draws its canvases after its scripts have run, which on a loaded machine can take minutes, and only
    once they are on screen: bring the container into view, then wait for the drawing itself, as long as a cell
    may run (``Notebook.wait_until_done``), never for a fixed pause.
    """
    container.scroll_into_view_if_needed(timeout=timeout_s * 1000)  # waits for it to exist first
    deadline = time.monotonic() + timeout_s
    while True:
        ink = canvas_ink(page, container)
        if len(ink) >= canvases and all(n > 0 for n in ink) or time.monotonic() > deadline:
            return ink
        page.wait_for_timeout(1000)
