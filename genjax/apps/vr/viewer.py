"""A standalone HTML panorama viewer: one file, no network, WebGL written here.

The page draws one full-screen triangle pair; its fragment shader turns each pixel's view
ray into (lon, lat) and samples the equirectangular texture, so any field of view and any
direction (poles included) render without a mesh. Drag (mouse or touch) turns the view,
the wheel or a pinch zooms. The panorama is embedded as a base64 JPEG data URI.

We write the ~120 lines of WebGL ourselves instead of using a viewer library (Pannellum,
Photo Sphere Viewer, three.js) because the file must work offline with nothing fetched and
nothing vendored. Angles follow genjax.image.projections: yaw positive = turn right
(yaw 0 shows lon 0, the panorama's centre column), pitch positive = up. The page exposes
its state as `window.viewerState` = {yaw, pitch, fov (horizontal, degrees), ready, frames}.
"""

import base64
import html
import pathlib

import numpy as np

from genjax.apps.vr import xmp

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
  html, body { margin: 0; height: 100%; overflow: hidden; background: #000; }
  canvas { display: block; width: 100%; height: 100%; touch-action: none; cursor: grab; }
  #msg { position: fixed; top: 1em; left: 1em; color: #fff; font: 14px sans-serif; }
</style>
</head>
<body>
<canvas id="view"></canvas>
<div id="msg"></div>
<script>
"use strict";
const PANO_URI = "__PANO_URI__";
const state = window.viewerState = {yaw: 0, pitch: 0, fov: 90, ready: false, frames: 0};
const canvas = document.getElementById("view");
const gl = canvas.getContext("webgl", {preserveDrawingBuffer: true, antialias: false});

const VERTEX = `
attribute vec2 corner;
varying vec2 ndc;
void main() { ndc = corner; gl_Position = vec4(corner, 0.0, 1.0); }`;
// Ray through the pixel -> world direction (rotation from yaw, pitch) -> (lon, lat) -> texel.
// World frame: x right, y up, -z forward; lon = atan(x, -z); row 0 of the texture is lat +90.
const FRAGMENT = `
precision highp float;
varying vec2 ndc;
uniform sampler2D pano;
uniform vec2 halfTan;
uniform mat3 rotation;
uniform float pad;  // width of the wrapped border column, in texture units
const float PI = 3.141592653589793;
void main() {
  vec3 d = normalize(rotation * vec3(ndc * halfTan, -1.0));
  float lon = atan(d.x, -d.z);
  float lat = asin(clamp(d.y, -1.0, 1.0));
  float u = pad + fract(lon / (2.0 * PI) + 0.5) * (1.0 - 2.0 * pad);
  gl_FragColor = texture2D(pano, vec2(u, 0.5 - lat / PI));
}`;

function compile(type, source) {
  const s = gl.createShader(type);
  gl.shaderSource(s, source);
  gl.compileShader(s);
  if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s));
  return s;
}

function fail(text) { document.getElementById("msg").textContent = text; state.error = text; }

let program = null, uniforms = {}, pending = false;

function setup() {
  program = gl.createProgram();
  gl.attachShader(program, compile(gl.VERTEX_SHADER, VERTEX));
  gl.attachShader(program, compile(gl.FRAGMENT_SHADER, FRAGMENT));
  gl.linkProgram(program);
  if (!gl.getProgramParameter(program, gl.LINK_STATUS)) {
    throw new Error(gl.getProgramInfoLog(program));
  }
  gl.useProgram(program);
  gl.bindBuffer(gl.ARRAY_BUFFER, gl.createBuffer());
  gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
  const corner = gl.getAttribLocation(program, "corner");
  gl.enableVertexAttribArray(corner);
  gl.vertexAttribPointer(corner, 2, gl.FLOAT, false, 0, 0);
  for (const name of ["pano", "halfTan", "rotation", "pad"]) {
    uniforms[name] = gl.getUniformLocation(program, name);
  }
}

function upload(image) {
  // WebGL 1 allows non-power-of-two textures only with clamping and no mipmaps, so the
  // image carries one extra column on each side (the opposite edge's) and the shader maps
  // the longitude inside them: linear filtering is then continuous across the seam.
  // Panoramas wider than the GPU's limit are scaled down first.
  const limit = gl.getParameter(gl.MAX_TEXTURE_SIZE);
  let source = image;
  if (image.width > limit) {
    source = document.createElement("canvas");
    source.width = limit;
    source.height = Math.round(image.height * limit / image.width);
    source.getContext("2d").drawImage(image, 0, 0, source.width, source.height);
  }
  gl.bindTexture(gl.TEXTURE_2D, gl.createTexture());
  gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGB, gl.RGB, gl.UNSIGNED_BYTE, source);
  for (const [key, value] of [[gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE],
                              [gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE],
                              [gl.TEXTURE_MIN_FILTER, gl.LINEAR],
                              [gl.TEXTURE_MAG_FILTER, gl.LINEAR]]) {
    gl.texParameteri(gl.TEXTURE_2D, key, value);
  }
}

function draw() {
  pending = false;
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  gl.viewport(0, 0, w, h);
  const t = Math.tan(state.fov * Math.PI / 360);
  const y = state.yaw * Math.PI / 180, p = state.pitch * Math.PI / 180;
  const cy = Math.cos(y), sy = Math.sin(y), cp = Math.cos(p), sp = Math.sin(p);
  // Camera-to-world R = R_Y(-yaw) R_X(pitch), column-major.
  gl.uniformMatrix3fv(uniforms.rotation, false,
                      [cy, 0, sy, -sy * sp, cp, cy * sp, -sy * cp, -sp, cy * cp]);
  gl.uniform2f(uniforms.halfTan, t, t * h / w);
  gl.uniform1i(uniforms.pano, 0);
  gl.uniform1f(uniforms.pad, 1 / state.textureWidth);
  gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
  state.frames += 1;
}

function redraw() { if (state.ready && !pending) { pending = true; requestAnimationFrame(draw); } }

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
const pointers = new Map();
let drag = null, pinch = null;

canvas.addEventListener("pointerdown", (e) => {
  canvas.setPointerCapture(e.pointerId);
  pointers.set(e.pointerId, [e.clientX, e.clientY]);
  drag = {x: e.clientX, y: e.clientY, yaw: state.yaw, pitch: state.pitch};
  if (pointers.size === 2) {
    const [a, b] = [...pointers.values()];
    pinch = {dist: Math.hypot(a[0] - b[0], a[1] - b[1]), fov: state.fov};
  }
});
canvas.addEventListener("pointermove", (e) => {
  if (!pointers.has(e.pointerId)) return;
  pointers.set(e.pointerId, [e.clientX, e.clientY]);
  if (pinch && pointers.size === 2) {
    const [a, b] = [...pointers.values()];
    const dist = Math.max(1, Math.hypot(a[0] - b[0], a[1] - b[1]));
    state.fov = clamp(pinch.fov * pinch.dist / dist, 20, 120);
  } else if (drag) {
    // Grab-and-drag: the scene follows the pointer, so dragging right turns the view left.
    const degPerPx = state.fov / canvas.clientWidth;
    state.yaw = ((drag.yaw - (e.clientX - drag.x) * degPerPx) % 360 + 540) % 360 - 180;
    state.pitch = clamp(drag.pitch + (e.clientY - drag.y) * degPerPx, -89.9, 89.9);
  }
  redraw();
});
for (const type of ["pointerup", "pointercancel"]) {
  canvas.addEventListener(type, (e) => {
    pointers.delete(e.pointerId);
    pinch = null;
    drag = null;
  });
}
canvas.addEventListener("wheel", (e) => {
  e.preventDefault();
  state.fov = clamp(state.fov * Math.exp(e.deltaY * 0.001), 20, 120);
  redraw();
}, {passive: false});
window.addEventListener("resize", redraw);

if (!gl) {
  fail("WebGL is not available in this browser.");
} else {
  const image = new Image();
  image.onload = () => {
    state.textureWidth = image.width;
    try { setup(); upload(image); state.ready = true; draw(); } catch (err) { fail(String(err)); }
  };
  image.onerror = () => fail("The panorama could not be decoded.");
  image.src = PANO_URI;
}
</script>
</body>
</html>
"""


def viewer_html(pano_rgb, *, title: str = "Panorama", quality: int = 90) -> str:
  """The viewer page for pano_rgb [H, 2H, 3] (uint8, or float in [0, 1]) as a string."""
  a = xmp.to_uint8(pano_rgb)
  if a.shape[1] != 2 * a.shape[0]:
    raise xmp.PanoFormatError(
        f"an equirectangular panorama is 2:1, got {a.shape[0]}x{a.shape[1]} (HxW)")
  wrapped = np.concatenate([a[:, -1:], a, a[:, :1]], axis=1)   # see upload() in the page
  uri = "data:image/jpeg;base64," + base64.b64encode(
      xmp.encode_jpeg(wrapped, quality=quality)).decode("ascii")
  return _PAGE.replace("__TITLE__", html.escape(title)).replace("__PANO_URI__", uri)


def write_viewer_html(pano_rgb, path, *, title: str = "Panorama",
                      quality: int = 90) -> pathlib.Path:
  """Writes the standalone viewer for pano_rgb [H, 2H, 3] to path (atomically)."""
  return xmp.write_atomic(path, viewer_html(pano_rgb, title=title, quality=quality)
                          .encode("utf-8"))
