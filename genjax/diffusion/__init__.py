"""Diffusion: noise schedules, objectives, loss weightings, the training loss, samplers.

  spec = DiffusionSpec.from_config(config.diffusion)
  loss = training_loss(net, x0, key, spec)             # [B]
  denoise_fn = make_denoiser(net, spec)                # (x_t, t) -> x0_hat
  x0 = get_sampler("dpmpp_2m")(denoise_fn, key, (B, H, W, C), spec, steps=25)
  x0 = get_sampler("heun")(denoise_fn, key, (B, H, W, C), spec, steps=18)  # NFE 35
  x0 = get_sampler("unipc")(denoise_fn, key, (B, H, W, C), spec, steps=10, order=3)

Flow matching: DiffusionSpec.create("flow", "flow", "logit_normal") (rectified-flow
schedule, velocity objective, SD3's logit-normal training times).

Every sampler takes grid="uniform" | "karras" (GRIDS); euler and heun default to
"karras" (rho = 7 in sigma / alpha, as in EDM) on every schedule, the others to the
schedule's own grid.

`net(x_in [B, H, W, C], c_noise [B]) -> [B, H, W, C]` is a plain function. Editing:
`img2img` (SDEdit), `inpaint` (RePaint); classifier-free guidance: `guided`.
"""

from genjax.diffusion.denoiser import denoise, make_denoiser
from genjax.diffusion.editing import img2img, inpaint
from genjax.diffusion.guidance import guided
from genjax.diffusion.loss import per_example_loss, sample_t_and_noise, training_loss
from genjax.diffusion.objectives import OBJECTIVES, get_objective
from genjax.diffusion.registry import UnknownNameError
from genjax.diffusion.samplers import SAMPLERS, get_sampler, num_evaluations
from genjax.diffusion.schedules import GRIDS, SCHEDULES, get_schedule
from genjax.diffusion.spec import DiffusionSpec
from genjax.diffusion.weighting import WEIGHTINGS, get_weighting
