"""The oneDNN glue is optional and built only by an explicit step: build it once for the
kernel tests where g++ and oneDNN's headers are installed (their tests skip without)."""

import pytest

from genjax.kernels import onednn_build


@pytest.fixture(scope="session", autouse=True)
def _onednn_built():
  try:
    onednn_build.build_library()
  except onednn_build.OneDnnUnavailable:
    pass  # status() says why; the oneDNN tests skip with it
  onednn_build._load.cache_clear()  # pylint: disable=protected-access
  yield
