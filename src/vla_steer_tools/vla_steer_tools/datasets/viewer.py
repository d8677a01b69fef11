"""`vla-steer data show`: look at an episode's frames (both cameras side by side)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .lerobot_v3 import image_cameras, iter_episodes


def show_episode(root: str | Path, episode: int, out: str | Path, every: int = 10) -> Path:
    """A PNG contact sheet (every `every`-th frame, labelled) or an animated GIF of all frames."""
    out = Path(out)
    eps = {e.index: e for e in iter_episodes(root, with_vectors=False)}
    if episode not in eps:
        raise ConfigError(f"episode {episode} not in {root}; it has {min(eps)}..{max(eps)}" if eps else f"{root} has no episodes")
    ep = eps[episode]
    cams = image_cameras(ep.path)
    frames = np.concatenate([ep.images(c) for c in cams], axis=2)  # (T, H, W * cams, 3)
    from PIL import Image, ImageDraw

    if out.suffix == ".gif":
        imgs = [Image.fromarray(f).resize((f.shape[1] * 3, f.shape[0] * 3), Image.NEAREST) for f in frames]
        imgs[0].save(out, save_all=True, append_images=imgs[1:], duration=50, loop=0)
        return out
    if out.suffix != ".png":
        raise ConfigError(f"--out must end in .png (contact sheet) or .gif (animation), got {out.name} "
                          "(.mp4 would need an ffmpeg backend, not installed here)")
    pick = list(range(0, len(frames), max(1, every)))
    scale, cols = 2, 6
    h, w = frames.shape[1] * scale, frames.shape[2] * scale
    rows = (len(pick) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * w, rows * (h + 14) + 20), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 4), f"episode {episode}: {ep.task}  success={ep.meta.get('success')}  ({' | '.join(cams)})", fill="black")
    for k, t in enumerate(pick):
        x, y = (k % cols) * w, 20 + (k // cols) * (h + 14)
        sheet.paste(Image.fromarray(frames[t]).resize((w, h), Image.NEAREST), (x, y))
        draw.text((x + 2, y + h), f"step {t}", fill="black")
    sheet.save(out)
    return out

