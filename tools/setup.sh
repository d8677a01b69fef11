#!/usr/bin/env bash
# Bring a fresh Debian/Ubuntu machine to a built vla-steer workspace, idempotently.
#
# 1. Debian packages for headless rendering (EGL/OSMesa) and Chromium (browser tests) when missing
#    (needs root or sudo).
# 2. .venv (Python >= 3.11) with the pinned set in requirements/ — rebuilt only when a pin file
#    or this script changes (stamp file), because recreating a venv costs minutes.
# 3. Patches the ROS 2 wheels' CMake files (they hard-code the wheel builder's Python paths).
# 4. A non-interactive LIBERO config under .state/ (libero otherwise prompts on import).
# 5. colcon build of src/ into install/ (fast no-op when nothing changed).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY_BIN="${PYTHON:-}"
REQ="$ROOT/requirements"

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

pick_python() {
    if [ -n "$PY_BIN" ]; then echo "$PY_BIN"; return; fi
    for cand in python3.11 python3.12 python3.13 python3; do
        if command -v "$cand" >/dev/null 2>&1 &&
            "$cand" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 13) else 1)'; then
            echo "$cand"; return
        fi
    done
    echo "error: need Python 3.11-3.13 (the ROS 2 Kilted wheels are built for cp310-cp313)" >&2
    exit 1
}

install_debian_packages() {
    local missing=()
    # chromium: the neuron browser's end-to-end tests drive it (Playwright, system browser)
    for pkg in libegl1 libgl1 libgl1-mesa-dri libosmesa6 chromium; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return
    command -v apt-get >/dev/null 2>&1 || { log "no apt-get: install ${missing[*]} by hand for headless rendering"; return; }
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    log "installing Debian packages for headless rendering and browser tests: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

quiet_pip() {
    # This machine's pip config lists local indexes that may not exist: drop those warnings only.
    "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

stamp_value() {
    cat "$REQ"/*.txt "$ROOT/tools/setup.sh" | sha256sum | cut -c1-16
}

create_venv() {
    local stamp="$VENV/.vla-steer-stamp" want
    want="$(stamp_value)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return
    fi
    if [ -d "$VENV" ]; then
        log "pins changed: updating .venv in place"
    else
        log "creating .venv with $(pick_python)"
        "$(pick_python)" -m venv "$VENV"
    fi
    local pip=(quiet_pip "$VENV/bin/python" -m pip --disable-pip-version-check -q)
    # setuptools first: torch needs >= 77.0.3, colcon-core < 80; the sdists build against it.
    "${pip[@]}" install -c "$REQ/constraints.txt" setuptools==79.0.1 wheel
    log "installing pinned dependencies (first time: several minutes; the venv is about 4.6 GB)"
    "${pip[@]}" install -c "$REQ/constraints.txt" -r "$REQ/requirements.txt"
    "${pip[@]}" install --no-deps --no-build-isolation -c "$REQ/constraints.txt" -r "$REQ/nodeps.txt"
    patch_ros_cmake
    echo "$want" > "$stamp"
}

patch_ros_cmake() {
    # The wheels were built under /opt/python/cp3XX-*/; point their CMake at this interpreter.
    "$VENV/bin/python" - "$VENV" <<'EOF'
import pathlib, re, sys, sysconfig
import numpy
venv = pathlib.Path(sys.argv[1])
inc = sysconfig.get_paths()["include"]
np_inc = numpy.get_include()
pat_np = re.compile(r"/opt/python/cp3\d+-cp3\d+t?/lib/python3\.\d+/site-packages/numpy/(_core|core)/include")
pat_inc = re.compile(r"/opt/python/cp3\d+-cp3\d+t?/include/python3\.\d+t?")
n = 0
for f in (venv / "share").rglob("*.cmake"):
    text = f.read_text(errors="replace")
    new = pat_inc.sub(inc, pat_np.sub(np_inc, text))
    if new != text:
        f.write_text(new)
        n += 1
print(f"[setup] patched interpreter paths in {n} ROS CMake files")
EOF
}

write_libero_config() {
    "$VENV/bin/python" "$ROOT/tools/libero_setup.py" "$ROOT/.state/libero"
}

build_workspace() {
    # shellcheck disable=SC1091
    source "$ROOT/tools/env.sh" --no-workspace
    log "colcon build (src/ -> install/)"
    colcon --log-base "$ROOT/build/colcon-log" build --base-paths src --build-base build \
        --install-base install --symlink-install \
        --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python" \
        --event-handlers console_cohesion- status- summary+ || {
        echo "error: colcon build failed (logs under build/colcon-log)" >&2; exit 1; }
}

install_debian_packages
create_venv
write_libero_config
build_workspace
log "ready"
