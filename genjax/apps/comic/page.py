"""Comic pages: rendered panels on a grid with borders, gutters and caption boxes.

The page is assembled layer by layer (flat, tone, ink as in render.py, panel borders
drawn into the ink) plus a "lettering" RGBA layer holding the caption boxes, so a page
can be saved as editable layers too. Photos are fitted to their panel (centre crop and
resize) before rendering, so screentones are drawn at the page's resolution.
"""

import dataclasses
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont


MAX_PAGE_WIDTH = 16384  # pixels: beyond this a page outgrows image viewers and host memory


@dataclasses.dataclass(frozen=True)
class PageLayout:
  """Page geometry, in page pixels.

  columns: panels per row; rows follow from the number of panels.
  width: page width.
  panel_aspect: panel height / width; None = the median aspect of the photos.
  margin: white border around the grid; gutter: space between panels.
  border: thickness of the black panel frame.
  caption_size: caption font size in pixels (Pillow's default font; a fixed bitmap font
    if Pillow lacks FreeType); None = width / 40.
  """
  columns: int = 2
  width: int = 1200
  panel_aspect: float | None = None
  margin: int = 32
  gutter: int = 20
  border: int = 4
  caption_size: int | None = None

  def __post_init__(self):
    if not 1 <= self.width <= MAX_PAGE_WIDTH:
      raise ValueError(f"page width must be in [1, {MAX_PAGE_WIDTH}] pixels, got {self.width}")
    if self.columns < 1 or self.width < 1 or min(self.margin, self.gutter, self.border) < 0:
      raise ValueError(f"PageLayout needs columns >= 1, width >= 1 and non-negative margin, "
                       f"gutter and border; got {self}")
    if self.panel_aspect is not None and not self.panel_aspect > 0:
      raise ValueError(f"PageLayout.panel_aspect must be > 0, got {self.panel_aspect}")


@dataclasses.dataclass(frozen=True)
class Box:
  top: int
  left: int
  height: int
  width: int


def panel_boxes(n: int, layout: PageLayout, aspect: float) -> tuple[tuple[int, int], list[Box]]:
  """(page (height, width), one Box per panel, row-major) for n panels of height/width aspect."""
  if n < 1:
    raise ValueError("a page needs at least one panel")
  cols = min(layout.columns, n)
  rows = math.ceil(n / cols)
  pw = (layout.width - 2 * layout.margin - (cols - 1) * layout.gutter) // cols
  if pw < 2 * layout.border + 8:
    raise ValueError(f"page width {layout.width} leaves {pw} px per panel for {cols} columns; "
                     f"make the page wider or use fewer columns")
  ph = max(2 * layout.border + 8, round(pw * aspect))
  boxes = [Box(layout.margin + (i // cols) * (ph + layout.gutter),
               layout.margin + (i % cols) * (pw + layout.gutter), ph, pw) for i in range(n)]
  height = 2 * layout.margin + rows * ph + (rows - 1) * layout.gutter
  if height * layout.width > MAX_PAGE_WIDTH ** 2:
    raise ValueError(f"{n} panels make a page of {height}x{layout.width} pixels (HxW), over "
                     f"{MAX_PAGE_WIDTH}^2; use fewer panels, more columns or a narrower page")
  return (height, layout.width), boxes


def fit_photo(photo: np.ndarray, height: int, width: int) -> np.ndarray:
  """uint8 [H, W, 3] -> float32 [height, width, 3] in [0, 1]: crop to the aspect, resize."""
  h, w = photo.shape[:2]
  if h * width > w * height:  # too tall: crop rows
    ch, cw = max(1, round(w * height / width)), w
  else:
    ch, cw = h, max(1, round(h * width / height))
  # Rows keep the upper part (faces, horizons), columns the centre.
  top, left = (h - ch) // 3, (w - cw) // 2
  im = Image.fromarray(photo[top:top + ch, left:left + cw])
  return np.asarray(im.resize((width, height), Image.Resampling.LANCZOS), np.float32) / 255.0


def assemble(panels: list[dict[str, np.ndarray]], boxes: list[Box], page_hw: tuple[int, int],
             border: int) -> dict[str, np.ndarray]:
  """Panel layers ({"ink": [h, w, 1], "flat": [h, w, 3], "tone": [h, w, 1]}) -> page layers.

  White paper outside the panels; each panel framed by `border` px of ink drawn over
  its outer edge.
  """
  hh, ww = page_hw
  page = {"flat": np.ones((hh, ww, 3), np.float32), "ink": np.zeros((hh, ww, 1), np.float32),
          "tone": np.zeros((hh, ww, 1), np.float32)}
  for layers, b in zip(panels, boxes, strict=True):
    sl = np.s_[b.top:b.top + b.height, b.left:b.left + b.width]
    for name in page:
      page[name][sl] = layers[name]
    if border:
      ink = page["ink"][sl]
      ink[:border], ink[-border:], ink[:, :border], ink[:, -border:] = 1.0, 1.0, 1.0, 1.0
  return page


def _font(size: int):
  try:
    return ImageFont.load_default(size=size)
  except (TypeError, OSError, ImportError):  # Pillow without FreeType: fixed-size bitmap font
    return ImageFont.load_default()


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, max_width: float) -> list[str]:
  lines = []
  for paragraph in text.split("\n"):
    line = ""
    for word in paragraph.split():
      trial = f"{line} {word}".strip()
      if line and draw.textlength(trial, font=font) > max_width:
        lines.append(line)
        line = word
      else:
        line = trial
    lines.append(line)
  return lines


def lettering(captions, boxes: list[Box], page_hw: tuple[int, int], *, border: int,
              size: int) -> np.ndarray:
  """Caption boxes (white, black frame, black text) in the top-left corner of their panels.

  Args:
    captions: one str or None per panel (None or "" = no caption); long text wraps
      to at most 3/4 of the panel width.
  Returns:
    float32 RGBA [H, W, 4] in [0, 1], transparent outside the boxes.
  """
  im = Image.new("RGBA", (page_hw[1], page_hw[0]), (0, 0, 0, 0))
  draw = ImageDraw.Draw(im)
  font = _font(size)
  pad = max(4, size // 3)
  for text, b in zip(captions, boxes, strict=True):
    if not text:
      continue
    lines = _wrap(draw, text, font, 0.75 * b.width - 2 * pad)
    spacing = max(2, size // 5)
    l, t, r, btm = draw.multiline_textbbox((0, 0), "\n".join(lines), font=font, spacing=spacing)
    x0, y0 = b.left + border + pad // 2, b.top + border + pad // 2
    x1 = min(x0 + (r - l) + 2 * pad, b.left + b.width - border - 1)
    y1 = min(y0 + (btm - t) + 2 * pad, b.top + b.height - border - 1)
    draw.rectangle((x0, y0, x1, y1), fill=(255, 255, 255, 255), outline=(0, 0, 0, 255),
                   width=max(1, border // 2))
    draw.multiline_text((x0 + pad - l, y0 + pad - t), "\n".join(lines), font=font,
                        fill=(0, 0, 0, 255), spacing=spacing)
  return np.asarray(im, np.float32) / 255.0


def over(rgba: np.ndarray, rgb: np.ndarray) -> np.ndarray:
  """Straight-alpha RGBA [H, W, 4] over opaque RGB [H, W, 3] ("normal" blending)."""
  a = rgba[..., 3:]
  return rgba[..., :3] * a + rgb * (1.0 - a)
