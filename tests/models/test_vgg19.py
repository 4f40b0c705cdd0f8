"""VGG19 port against torchvision.models.vgg19, randomly initialised (the published weights
cannot be downloaded here), through the converter and the .npz weights file."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the reference implementation needs PyTorch")
torchvision = pytest.importorskip(
    "torchvision", reason="the reference implementation is torchvision's vgg19 (the test extra "
    "installs torchvision==0.29.1, which needs torch==2.14.1)")

from genjax.models import convert_vgg19  # noqa: E402
from genjax.models import vgg19  # noqa: E402

# torchvision vgg19().features index of each tapped ReLU.
TORCH_INDEX = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20, "relu4_2": 22,
               "relu5_1": 29, "pool5": 36}
TAPS = tuple(TORCH_INDEX)


def _relative_error(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
  """(torchvision model, weights .pth path, converted .npz path). Biases are drawn at random
  too (torchvision initialises them to 0, which would hide a dropped or swapped bias)."""
  torch.manual_seed(0)
  model = torchvision.models.vgg19(weights=None).eval()
  g = torch.Generator().manual_seed(1)
  with torch.no_grad():
    for name, p in model.named_parameters():
      if name.endswith("bias"):
        p.copy_(0.1 * torch.randn(p.shape, generator=g))
  folder = tmp_path_factory.mktemp("vgg19")
  pth = folder / "vgg19-random.pth"
  torch.save(model.state_dict(), pth)
  npz = folder / "vgg19.npz"
  assert convert_vgg19.main([str(pth), str(npz)]) == 0
  return model, pth, npz


def test_features_match_torchvision(converted):
  model, _, npz = converted
  rng = np.random.default_rng(0)
  images = rng.uniform(0.0, 1.0, (2, 32, 32, 3)).astype(np.float32)   # [B, H, W, 3] in [0, 1]
  params = vgg19.load_npz(npz)
  ours = jax.jit(lambda p, x: vgg19.VGG19(taps=TAPS).apply({"params": p}, x))(
      params, jnp.asarray(images))
  mean, std = np.array(vgg19.IMAGENET_MEAN), np.array(vgg19.IMAGENET_STD)
  x = torch.from_numpy(((images - mean) / std).astype(np.float32)).permute(0, 3, 1, 2)
  refs = {}
  with torch.no_grad():
    for i, layer in enumerate(model.features):
      x = layer(x)
      refs[i] = x.permute(0, 2, 3, 1).numpy()
  for tap, index in TORCH_INDEX.items():
    assert ours[tap].shape == refs[index].shape, tap
    err = _relative_error(ours[tap], refs[index])
    print(f"{tap}: relative error {err:.2e}")
    assert err < 1e-5, (tap, err)


def test_only_the_needed_convs_load_and_run(converted):
  _, _, npz = converted
  vgg19.check_npz(npz)   # headers only: the file fits
  params = vgg19.load_npz(npz, taps=("relu4_2",))
  assert sorted(params) == ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2",
                            "conv3_3", "conv3_4", "conv4_1", "conv4_2"]
  out = vgg19.VGG19(taps=("relu4_2",)).apply({"params": params}, jnp.zeros((1, 16, 16, 3)))
  assert out["relu4_2"].shape == (1, 2, 2, 512)


def test_converter_refuses_its_input_and_names_bad_keys(converted, tmp_path, capsys):
  _, pth, _ = converted
  before = pth.read_bytes()
  assert convert_vgg19.main([str(pth), str(pth)]) == 1
  assert "must end in .npz" in capsys.readouterr().err
  link = tmp_path / "link.npz"
  link.symlink_to(pth)
  assert convert_vgg19.main([str(pth), str(link)]) == 1
  assert "refusing to overwrite the input checkpoint" in capsys.readouterr().err
  assert pth.read_bytes() == before
  state = {k: v.numpy() for k, v in torch.load(pth, weights_only=True).items()}
  state["features.3.weight"] = state["features.0.weight"]   # a ReLU index: not a conv
  with pytest.raises(vgg19.VGG19WeightsError, match=r"'my.pth'.*features\.3\.weight"):
    convert_vgg19.convert_state_dict(state, "'my.pth'")
  del state["features.3.weight"]
  state["features.0.weight"] = state["features.0.weight"][:, :2]
  with pytest.raises(vgg19.VGG19WeightsError, match=r"conv1_1/kernel expected \(3, 3, 3, 64\)"):
    convert_vgg19.convert_state_dict(state)
  for read in (vgg19.load_npz, vgg19.check_npz):
    with pytest.raises(vgg19.VGG19WeightsError, match="convert_vgg19"):
      read(pth)   # a .pth given where the .npz belongs
  # The header-only check names what load_npz would: here one kernel of the wrong shape.
  flat = dict(np.load(converted[2]))
  flat["conv2_1/kernel"] = flat["conv2_1/kernel"][:, :, :3]
  np.savez(tmp_path / "bad.npz", **flat)
  with pytest.raises(vgg19.VGG19WeightsError,
                     match=r"conv2_1/kernel expected \(3, 3, 64, 128\), found \(3, 3, 3, 128\)"):
    vgg19.check_npz(tmp_path / "bad.npz")
