"""The modules a learner lifts stand alone (images.py with generator.py beside it), and the
reading works where os.readv does not exist."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

import helpers.generator

ROOT = Path(__file__).resolve().parents[1]

# The start of a script run in a fresh interpreter: the course's package is installed here,
# a learner's project does not have it, so importing it fails; argv[1] goes on sys.path.
NO_HELPERS = textwrap.dedent("""
    import importlib.abc, pickle, sys
    from pathlib import Path

    class NoHelpers(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "helpers" or name.startswith("helpers."):
                raise ImportError(f"{name} is not available in a learner's project")

    sys.meta_path.insert(0, NoHelpers())
    sys.path.insert(0, sys.argv[1])
""")

LIFTED = NO_HELPERS + textwrap.dedent("""
    import keras
    import numpy as np
    before = set(sys.modules)  # what keras and numpy import themselves (per backend)
    from generator import DataGenerator

    data = Path(sys.argv[2])
    ids = [f"s{i}" for i in range(10)]
    for i, id_ in enumerate(ids):
        np.save(data / f"{id_}.npy", np.full((4, 4, 4), i, np.uint8))
    gen = DataGenerator(ids, {k: i % 2 for i, k in enumerate(ids)}, data, batch_size=4,
                        dim=(4, 4, 4), n_classes=2, seed=0)
    X, y = gen[1]
    assert X.shape == (4, 4, 4, 4, 1) and y.shape == (4, 2), (X.shape, y.shape)
    assert [int(v) for v in X[:, 0, 0, 0, 0]] == [int(i[1:]) for i in gen.batch_ids(1)]
    copy = pickle.loads(pickle.dumps(gen))
    assert np.array_equal(copy[2][0], gen[2][0])
    assert "helpers" not in sys.modules
    root = sys.argv[3]
    from_repo = sorted(n for n, m in sys.modules.items()
                       if (getattr(m, "__file__", None) or "").startswith(root))
    assert not from_repo, f"modules loaded from the course's helpers/: {from_repo}"
    added = {n.split(".")[0] for n in set(sys.modules) - before}
    for other in ("tqdm", "matplotlib", "psutil"):  # what other helpers modules use
        assert other not in added, f"generator.py needs {other}"
    print("lifted OK")
""")


def test_generator_py_alone_in_an_empty_folder(tmp_path):
    """Copy generator.py, and only it, into a new folder: it builds, serves and pickles."""
    lifted, data = tmp_path / "project", tmp_path / "data"
    lifted.mkdir()
    data.mkdir()
    shutil.copy(helpers.generator.__file__, lifted / "generator.py")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", LIFTED, str(lifted), str(data), str(ROOT / "helpers")],
        cwd=lifted, env=env | {"TF_CPP_MIN_LOG_LEVEL": "3"}, capture_output=True, text=True,
        timeout=300)
    assert done.returncode == 0 and "lifted OK" in done.stdout, done.stderr[-3000:]


def test_reading_does_not_need_os_readv(volumes, monkeypatch):
    """Windows has no os.readv: remove it and read every batch of an epoch."""
    monkeypatch.delattr(os, "readv", raising=False)
    data_dir, partition, labels = volumes
    gen = helpers.generator.DataGenerator(partition["train"], labels, data_dir, batch_size=8,
                                          dim=(16, 16, 16), n_classes=3, seed=0)
    for b in range(len(gen)):
        expected = np.stack([np.load(data_dir / f"{i}.npy") for i in gen.batch_ids(b)])
        assert np.array_equal(gen[b][0][..., 0], expected.astype(np.float32))


def test_generator_tests_pass_without_os_readv():
    """The whole contract of DataGenerator (and its packed variant) with os.readv deleted."""
    code = ("import os, sys, pytest\n"
            "if hasattr(os, 'readv'):\n"
            "    del os.readv\n"
            "sys.exit(pytest.main(['-q', '-p', 'no:nbval', '-o', 'addopts=', "
            "'tests/test_generator.py', 'tests/test_packed.py']))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=600,
                          env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout


LIFTED_IMAGES = NO_HELPERS + textwrap.dedent("""
    from PIL import Image
    from mypkg.images import ImageFolderDataset

    for k in range(5):
        Image.new("RGB", (4, 4), (k * 40, 0, 0)).save(f"{sys.argv[2]}/c{k % 2}/{k}.png")
    shards = [ImageFolderDataset(sys.argv[2], image_size=(4, 4), batch_size=2, seed=0,
                                 shard=(i, 2), shard_remainder="drop") for i in range(2)]
    rows = [r for s in shards for b in range(len(s)) for r in s.batch_rows(b).tolist()]
    assert len(rows) == len(set(rows)) == 4 and shards[0].samples_dropped == 1
    assert pickle.loads(pickle.dumps(shards[1]))[0][0].shape == (2, 4, 4, 3)
    print("lifted OK")
""")


def test_images_py_with_generator_py_in_a_package(tmp_path):
    """images.py needs generator.py (one copy of the sharding rule) and decode.py beside it:
    the three, in a package of the learner's project, build, shard and pickle without the
    course's helpers."""
    package, data = tmp_path / "project" / "mypkg", tmp_path / "data"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name in ("images.py", "generator.py", "decode.py"):
        shutil.copy(ROOT / "helpers" / name, package / name)
    for k in range(2):
        (data / f"c{k}").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", LIFTED_IMAGES, str(package.parent), str(data)],
        cwd=package.parent, env=env | {"TF_CPP_MIN_LOG_LEVEL": "3"}, capture_output=True,
        text=True, timeout=300)
    assert done.returncode == 0 and "lifted OK" in done.stdout, done.stderr[-3000:]
