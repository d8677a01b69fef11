"""Cheaper offscreen rendering for LIBERO/robosuite on a CPU (Mesa llvmpipe).

Stock LIBERO renders into a 640x480 multisampled buffer with reflections and a skybox, then reads
back a small image. On llvmpipe most of a step's time goes there. `apply_fast_render` turns off
anti-aliasing (offsamples 0), reflections and the skybox and shrinks the offscreen buffer to the
image size: measured 2.5-3x faster steps (bench/bench_sim_step.py). Shadows stay on: turning them
off saved nothing measurable and changes the look more.

All of this lives in the sim's model and its render context, which LIBERO's hard reset rebuilds:
call it after every `env.reset()`, from the thread that owns the GL context.
"""

from __future__ import annotations

from typing import Any

import mujoco

#: Scene flags switched off by the fast render mode.
FAST_RENDER_OFF_FLAGS: tuple[int, ...] = (
    mujoco.mjtRndFlag.mjRND_REFLECTION,
    mujoco.mjtRndFlag.mjRND_SKYBOX,
)


def apply_fast_render(sim: Any, image_size: int) -> None:
    """Switch a robosuite `MjSim`'s offscreen renderer to the fast settings (idempotent)."""
    ctx = sim._render_context_offscreen
    if ctx is None:  # no offscreen renderer (camera observations off): nothing to speed up
        return
    model = sim.model._model
    model.vis.quality.offsamples = 0
    model.vis.global_.offwidth = int(image_size)
    model.vis.global_.offheight = int(image_size)
    # The MjrContext sizes and multisamples its framebuffer at creation: rebuild it.
    ctx.gl_ctx.make_current()
    ctx.con.free()
    ctx._set_mujoco_context_and_buffers()
    for flag in FAST_RENDER_OFF_FLAGS:
        ctx.scn.flags[flag] = 0
