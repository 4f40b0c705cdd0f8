"""`python -m benchmarks`: it says where results go and why PyTorch columns are empty
(issue 15.11). Runs one tiny conv case; nothing here is timed or compared."""

import pytest

import benchmarks
from benchmarks import __main__ as bench_main
from benchmarks import conv


@pytest.mark.parametrize("torch_installed", [False, True])
def test_conv_says_where_and_why_no_torch(tmp_path, monkeypatch, capsys, torch_installed):
  monkeypatch.chdir(tmp_path)
  # The benchmarks' process settings turn the compilation cache off for the whole process;
  # this test process keeps the tests' settings.
  monkeypatch.setattr(benchmarks, "setup", lambda: {})
  monkeypatch.setattr(conv, "torch_available", lambda: torch_installed)
  args = ["conv", "--shapes", "1x8x8x4->4", "--dtypes", "float32", "--impls", "xla",
          "--passes", "fwd", "--repeats", "1"]
  if torch_installed:
    args += ["--padding", "CIRCULAR_W"]   # the torch comparison runs with SAME only
  bench_main.main(args)
  out = capsys.readouterr().out
  assert out.splitlines()[0] == f"benchmarks: results go to {tmp_path / 'benchmark_results'}"
  why = ("PyTorch is not installed (pip install 'genjax-engine[bench]')" if not torch_installed
         else "it runs with --padding SAME only, not CIRCULAR_W")
  assert f"no PyTorch comparison: {why}; the 'x torch' columns show '-'" in out
  assert (tmp_path / "benchmark_results" / "conv" / "conv.json").is_file()


def test_results_location_follows_out_and_json(tmp_path):
  assert bench_main.results_location(["--out", str(tmp_path / "x")]) == tmp_path / "x"
  assert bench_main.results_location([f"--json={tmp_path}/s.json"]) == tmp_path / "s.json"
