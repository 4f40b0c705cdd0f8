"""The HTML viewer in headless Chromium: it renders what equirect_to_perspective computes, and
a mouse drag turns the view.

Rendering: chromium's own `--headless --screenshot`. Interaction: chromedriver's W3C
WebDriver HTTP protocol spoken with urllib (no selenium). WebGL runs in software through
SwiftShader. Every wait is bounded. Skipped when /usr/bin/chromium is absent (Debian
packages chromium and chromium-driver).
"""

import base64
import contextlib
import io
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from genjax.apps.vr import viewer
from genjax.image import projections

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"{CHROMIUM} not found: install the Debian packages chromium and chromium-driver")

WIDTH, HEIGHT = 400, 300
BROWSER_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--disable-dev-shm-usage", "--hide-scrollbars", f"--window-size={WIDTH},{HEIGHT}",
]
RED = np.array([255, 0, 0])


def make_pano() -> np.ndarray:
  """uint8 [256, 512, 3]: red square at the front (lon 0, lat 0), yellow at lon 90, blue
  sky above a teal ground, green rising with sin(lon) so left and right differ."""
  h, w = 256, 512
  lon = (np.arange(w) + 0.5) / w * 360 - 180
  lat = 90 - (np.arange(h) + 0.5) / h * 180
  lat, lon = np.meshgrid(lat, lon, indexing="ij")
  img = np.zeros((h, w, 3))
  img[..., 1] = 0.5 + 0.4 * np.sin(np.deg2rad(lon))
  img[..., 2] = np.where(lat > 0, 0.8, 0.3)
  img[(np.abs(lon) < 25) & (np.abs(lat) < 25)] = [1, 0, 0]
  img[(np.abs(lon - 90) < 25) & (np.abs(lat) < 25)] = [1, 1, 0]
  return np.round(img * 255).astype(np.uint8)


def expected_view(pano, yaw, pitch, hw, fov=90.0) -> np.ndarray:
  """What the viewer should show, from genjax.image.projections: [H, W, 3]."""
  out = projections.equirect_to_perspective(
      np.asarray(pano, np.float32), yaw=yaw, pitch=pitch, roll=0.0, hfov_deg=fov, out_hw=hw)
  return np.asarray(out)


def mean_abs_diff(a, b) -> float:
  return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean() / 255)


def centre(img) -> np.ndarray:
  h, w = img.shape[:2]
  return np.asarray(img)[h // 2 - 2:h // 2 + 2, w // 2 - 2:w // 2 + 2].reshape(-1, 3).mean(0)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
  folder = tmp_path_factory.mktemp("viewer")
  pano = make_pano()
  path = viewer.write_viewer_html(pano, folder / "pano.html", title="test <pano>")
  return pano, path


def test_page_is_standalone(page):
  _, path = page
  text = path.read_text()
  assert "<title>test &lt;pano&gt;</title>" in text
  assert "data:image/jpeg;base64," in text and "window.viewerState" in text
  assert "http://" not in text and "https://" not in text  # nothing to fetch
  with pytest.raises(ValueError, match="2:1"):
    viewer.write_viewer_html(np.zeros((10, 30, 3), np.uint8), path.with_name("bad.html"))


def test_cli_screenshot_shows_the_front(page, tmp_path):
  pano, path = page
  shot = tmp_path / "shot.png"
  subprocess.run([CHROMIUM, *BROWSER_ARGS, f"--user-data-dir={tmp_path / 'profile'}",
                  "--virtual-time-budget=5000", f"--screenshot={shot}", path.as_uri()],
                 check=True, timeout=30, capture_output=True)
  img = np.asarray(Image.open(shot).convert("RGB"))
  assert img.shape == (HEIGHT, WIDTH, 3)
  assert img.std() > 20, "blank screenshot"
  assert np.abs(centre(img) - RED).max() < 10, centre(img)
  assert mean_abs_diff(img, expected_view(pano, 0.0, 0.0, (HEIGHT, WIDTH))) < 0.02


class WebDriver:
  """The few W3C WebDriver endpoints we need, over urllib."""

  def __init__(self, port: int):
    self.base = f"http://127.0.0.1:{port}"
    self.session = None

  def call(self, method: str, path: str, body=None, timeout: float = 20.0):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
      with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)["value"]
    except urllib.error.HTTPError as e:
      raise RuntimeError(f"WebDriver {method} {path}: {e.read().decode()[:500]}") from e

  def run(self, method: str, path: str, body=None):
    return self.call(method, f"/session/{self.session}{path}", body)

  def script(self, source: str):
    return self.run("POST", "/execute/sync", {"script": source, "args": []})

  def screenshot(self) -> np.ndarray:
    png = base64.b64decode(self.run("GET", "/screenshot"))
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))

  def wait_for(self, predicate, what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
      state = self.script("return window.viewerState;")
      if predicate(state):
        return state
      time.sleep(0.1)
    raise TimeoutError(f"viewer did not reach '{what}' in {timeout} s: {state}")


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@contextlib.contextmanager
def chromedriver(profile):
  if not os.path.exists(CHROMEDRIVER):
    pytest.skip(f"{CHROMEDRIVER} not found: install the Debian package chromium-driver")
  port = free_port()
  proc = subprocess.Popen([CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  driver = WebDriver(port)
  try:
    deadline = time.monotonic() + 10
    while True:
      try:
        if driver.call("GET", "/status", timeout=2)["ready"]:
          break
      except (urllib.error.URLError, ConnectionError):
        pass
      if time.monotonic() > deadline or proc.poll() is not None:
        raise TimeoutError("chromedriver did not start")
      time.sleep(0.1)
    caps = {"browserName": "chrome", "goog:chromeOptions": {
        "binary": CHROMIUM, "args": [*BROWSER_ARGS, f"--user-data-dir={profile}"]}}
    driver.session = driver.call("POST", "/session", {"capabilities": {"alwaysMatch": caps}},
                                 timeout=30)["sessionId"]
    yield driver
  finally:
    if driver.session:
      with contextlib.suppress(Exception):
        driver.call("DELETE", f"/session/{driver.session}", timeout=10)
    proc.terminate()
    try:
      proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
      proc.kill()
      proc.wait(timeout=5)


def test_drag_turns_the_view(page, tmp_path):
  pano, path = page
  with chromedriver(tmp_path / "profile") as driver:
    driver.run("POST", "/url", {"url": path.as_uri()})
    start = driver.wait_for(lambda s: s and s.get("ready") and s["frames"] >= 1, "ready")
    assert (start["yaw"], start["pitch"], start["fov"]) == (0, 0, 90)
    # Under chromedriver the window frame takes part of --window-size: use the real viewport.
    w, h = driver.script("return [window.innerWidth, window.innerHeight];")
    before = driver.screenshot()
    assert before.shape == (h, w, 3) and w >= 200 and h >= 100
    assert np.abs(centre(before) - RED).max() < 10

    # Drag right by half the width and down by 20 px: the scene follows the pointer, so the
    # view turns left by (w / 2) * 90 / w = 45 degrees and up by 20 * 90 / w degrees.
    move = lambda x, y, ms: {"type": "pointerMove", "x": x, "y": y, "duration": ms,  # noqa: E731
                             "origin": "viewport"}
    x0, y0 = w // 4, h // 2 - 10
    driver.run("POST", "/actions", {"actions": [{
        "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
        "actions": [move(x0, y0, 0), {"type": "pointerDown", "button": 0},
                    move(x0 + w // 4, y0 + 10, 50), move(x0 + w // 2, y0 + 20, 50),
                    {"type": "pointerUp", "button": 0}],
    }]})
    after_state = driver.wait_for(lambda s: s["frames"] > start["frames"] and s["yaw"] < -40,
                                  "turned")
    assert after_state["yaw"] == pytest.approx(-(w // 2) * 90 / w, abs=1e-3)
    assert after_state["pitch"] == pytest.approx(20 * 90 / w, abs=1e-3)
    assert after_state["fov"] == 90
    after = driver.screenshot()
    assert mean_abs_diff(after, before) > 0.05
    assert np.abs(centre(after) - RED).max() > 100  # the red front has moved aside
    assert mean_abs_diff(after, expected_view(pano, after_state["yaw"], after_state["pitch"],
                                              (h, w))) < 0.02
