"""Run the notebooks under nbval in two lanes at once: the core path and the deep dives.

``make test`` runs this once per backend. CI, like Colab's free tier, has two cores, and two
pytest processes side by side save wall time: on the course's 2-core machine (2026-12-07) the
TensorFlow, JAX and PyTorch passes took 417, 519 and 428 s one notebook after the other, and
273, 391 and 252 s in two lanes (each a clean clone's `.ci/run`). A lane runs its notebooks in
a learner's order, in one pytest process, as ``pytest notebooks`` would. The two lanes share no
data folder (the core path writes ``volumes-*``, ``observed``, ``runs-05``, ``cifar10`` and
``imagenette*`` under ``data/``; the deep dives ``benchmark-volumes-*``, ``hf-datasets-*`` and
temporary folders), so neither reads a dataset the other is half-way through writing.

Each line a lane prints is shown as it comes, prefixed with the lane's name; the exit status
is the first non-zero one of the lanes (0 when both pass).

    python tools/nbval_lanes.py [extra pytest arguments]
    python tools/nbval_lanes.py --serial    # one lane after the other (for a 1-core machine)
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lanes(root: Path = ROOT) -> dict[str, list[str]]:
    """The notebooks of each lane, as paths relative to ``root``, in file-name order."""
    def found(pattern: str) -> list[str]:
        return sorted(p.relative_to(root).as_posix() for p in root.glob(pattern))

    return {"core": found("notebooks/[0-9][0-9]_*.ipynb"),
            "deep-dives": found("notebooks/deep-dives/[0-9][0-9]_*.ipynb")}


def _pump(name: str, stream, lock: threading.Lock) -> None:
    for line in stream:
        with lock:
            sys.stdout.write(f"[{name}] {line}")
            sys.stdout.flush()


def run_lanes(commands: dict[str, list[str]], serial: bool = False,
              cwd: Path = ROOT) -> int:
    """Run each lane's command (side by side unless ``serial``); return the first non-zero
    exit status, or 0. Every line of output is prefixed with its lane's name."""
    lock = threading.Lock()
    status: dict[str, int] = {}
    env = dict(os.environ)
    if not serial and len(commands) > 1:
        # Side by side, each lane gets its share of the cores for its math libraries' thread
        # pools (PyTorch's OpenMP above all: two pools that each spin on every core slowed
        # the PyTorch pass from 428 s to 532 s on 2 cores); a value the caller set is kept.
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // len(commands))))
    started = time.perf_counter()

    def one(name: str, command: list[str]) -> None:
        begun = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, bufsize=1)
        _pump(name, process.stdout, lock)
        status[name] = process.wait()
        with lock:
            print(f"[{name}] exit status {status[name]} after "
                  f"{time.perf_counter() - begun:.0f} s", flush=True)

    threads = [threading.Thread(target=one, args=item) for item in commands.items()]
    for thread in threads:
        thread.start()
        if serial:
            thread.join()
    for thread in threads:
        thread.join()
    print(f"lanes: {', '.join(f'{n} {s}' for n, s in status.items())}; "
          f"{time.perf_counter() - started:.0f} s in all", flush=True)
    return next((s for s in status.values() if s != 0), 0)


def main(argv: list[str]) -> int:
    serial = "--serial" in argv
    extra = [a for a in argv if a != "--serial"]
    commands = {name: [sys.executable, "-m", "pytest", *notebooks, *extra]
                for name, notebooks in lanes().items() if notebooks}
    if not commands:
        print("no notebooks found", file=sys.stderr)
        return 1
    return run_lanes(commands, serial=serial)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
