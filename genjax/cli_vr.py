"""`genjax vr`: its arguments and its command (genjax.apps.vr.run does the work)."""

import sys


def add_parser(sub) -> None:
  """Adds the `vr` subcommand to `sub` (argparse subparsers of genjax.cli.build_parser)."""
  p = sub.add_parser("vr", help="photo -> 360 panorama (photo sphere + viewer) and stereo pairs")
  p.add_argument("inputs", nargs="+", metavar="IN", help="image files or folders")
  p.add_argument("-o", "--out", required=True,
                 help="output folder (<stem>.jpg, <stem>.html, <stem>_sbs.jpg, ...), or a .jpg "
                      "for one input")
  p.add_argument("--mode", choices=("panorama", "stereo", "both"), default="panorama")
  p.add_argument("--fov", type=float, default=None,
                 help="horizontal field of view in degrees, in (0, 180) (default: from the EXIF "
                      "focal length, else 60)")
  p.add_argument("--pitch", type=float, default=0.0, help="camera pitch in degrees (up > 0)")
  p.add_argument("--roll", type=float, default=0.0, help="camera roll in degrees (clockwise > 0)")
  p.add_argument("--html", action="store_true", help="also write a standalone HTML viewer")
  p.add_argument("--cube", action="store_true",
                 help="also write the six cube faces (<stem>_cube_<face>.jpg) and one-image "
                      "layouts: <stem>_cube_strip.jpg (6:1, +X -X +Y -Y +Z -Z, as game "
                      "engines import) and <stem>_cube_cross.jpg (4:3 horizontal cross)")
  p.add_argument("--ods", action="store_true",
                 help="also write an omnidirectional stereo panorama: <stem>_ods_tb.jpg "
                      "(top-bottom, left eye on top) and <stem>_ods.vr.jpg (VR photo, GPano "
                      "XMP); distances from a flat-ground prior, eye distance --baseline")
  p.add_argument("--workdir", default=None,
                 help="panorama run folder (genjax train --config=panorama_tiny or panorama); "
                      "needed for --mode panorama/both; fills stereo holes with --holes model")
  p.add_argument("--steps", type=int, default=None,
                 help="sampler steps (default: 50; a distilled student's own, e.g. 4)")
  p.add_argument("--sampler", default=None,
                 help="ddpm, ddim, euler, heun, dpm++2m, dpmpp_3m, dpmpp_2m_sde, unipc "
                      "(default: ddpm; a distilled student's own, ddim)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--height", type=int, default=None,
                 help="panorama height in pixels, 2 to 4096, width 2x (default: the photo's "
                      "resolution, at most 8192 wide)")
  p.add_argument("--depth", default="auto",
                 help="stereo depth: auto (default: genjax's depth UNet, or Depth Anything V2 "
                      "with --depth-weights), unet, depth_anything, a depth map (.npy z-depth "
                      "in metres, or an image with white = near), or a folder of <stem>.npy / "
                      "<stem>.png")
  p.add_argument("--depth-weights", default=None, metavar="FILE",
                 help="weights of the depth method (depth_anything: required; unet: a "
                      "depth_tiny run folder or exported file, default the shipped one)")
  p.add_argument("--holes", choices=("auto", "model", "stopgap"), default="auto",
                 help="stereo disocclusions: the run's sampler (model, needs --workdir) or "
                      "background extension (stopgap; auto = stopgap, the more accurate)")
  p.add_argument("--baseline", type=float, default=0.064, help="stereo eye distance, metres")
  p.add_argument("--convergence", type=float, default=None,
                 help="stereo zero-parallax distance, metres (default: infinity)")
  p.set_defaults(fn=run)


def run(args, overrides) -> int:
  """`genjax vr`: writes the panoramas / stereo pairs; exit code 1 if an input failed."""
  from genjax.apps.vr import run as vr_run
  result = vr_run.vr_files(
      args.inputs, args.out, mode=args.mode, fov=args.fov, pitch=args.pitch, roll=args.roll,
      html=args.html, workdir=args.workdir,
      steps=args.steps, seed=args.seed, sampler=args.sampler, out_height=args.height,
      depth=args.depth, holes=args.holes, baseline=args.baseline,
      convergence=args.convergence, cube=args.cube, ods_out=args.ods,
      depth_weights=args.depth_weights)
  print(f"wrote {len(result.written)} files to {args.out}")
  if result.sampling is not None:
    print(f"  sampler {result.sampling[0]}, {result.sampling[1]} steps")
  for path, (column, gradient) in result.seams.items():
    print(f"  {path}: seam column ratio {column:.3f}, gradient ratio {gradient:.3f}, "
          f"sampling {result.sampling_seconds[path]:.2f} s")
  for path, message in result.failures:
    print(f"genjax: failed: {message}", file=sys.stderr)
  return 1 if result.failures else 0
