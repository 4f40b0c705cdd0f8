"""`genjax demo`, shortened: every step runs and writes what the README promises."""

import json

from genjax import demo


def test_demo_writes_training_eval_and_app_outputs(tmp_path, tiny_overrides):
  overrides = tiny_overrides + ["train.eval_every=2", "train.eval_num_images=8",
                                "train.eval_batch_size=4", "train.eval_sample_steps=2"]
  assert demo.run(tmp_path, steps=4, overrides=overrides, num_photos=1,
                  vr_steps=4) == 0
  train = tmp_path / "train"
  for name in ("samples.png", "loss.png", "eval.png", "summary.json", "metrics.jsonl"):
    assert (train / name).is_file(), name
  records = [json.loads(line) for line in (train / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records if "eval/swd" in r] == [2, 4]
  comic = tmp_path / "comic"
  assert (comic / "page.png").is_file()
  assert len(list(comic.glob("*.manga.png"))) == len(list(comic.glob("*.comic.png"))) >= 1
  vr = tmp_path / "vr"
  from PIL import Image
  with Image.open(vr / "panorama.jpg") as im:
    assert im.width == 2 * im.height and b"GPano" in (im.info.get("xmp") or b"")
  assert (vr / "panorama.html").stat().st_size > 1000
  # The README's embedding example on the demo's (mask-conditioned) run: no cond needed.
  import genjax
  import jax
  sample_fn, params = genjax.load_sampler(train, sampler="ddim", steps=2)
  images = jax.jit(sample_fn, static_argnums=2)(params, jax.random.PRNGKey(0), 2)
  assert images.shape == (2, 8, 16, 3) and bool(jax.numpy.isfinite(images).all())
