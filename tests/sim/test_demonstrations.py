"""Demonstrations end to end in LIBERO: two short episodes generated, read back, replayed, resumed,
and a few training steps of the mini-VLA head on them (the loss goes down)."""

from __future__ import annotations

import numpy as np
import pytest

from libero_sim_bridge.demos import GenerateOptions, generate, plan_episodes
from libero_sim_bridge.env import LiberoEnv
from vla_steer_tools.datasets.instructions import load_wordings
from vla_steer_tools.datasets.lerobot_v3 import iter_episodes, read_info
from vla_steer_tools.expert.tasks import task_text

pytestmark = pytest.mark.slow
TASK = ("libero_object", 1)
OPTS = GenerateOptions(image_size=32, max_steps=400, settle_steps=10)


def _specs():
    w = load_wordings()
    return plan_episodes([TASK], [0], ["fast"], ["normal"], noise=0.15, noise_fraction=1.0, seed=3, wordings=w,
                         task_texts={TASK: task_text(*TASK)}) + \
        plan_episodes([TASK], ["r0"], ["fast"], ["high"], noise=0.0, noise_fraction=0.0, seed=4, wordings=w,
                      task_texts={TASK: task_text(*TASK)})


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    out = tmp_path_factory.mktemp("demos")
    specs = _specs()
    specs = [specs[0], type(specs[1])(**{**specs[1].__dict__, "index": 1})]
    generate(specs, out, OPTS, workers=1)
    return out, specs


def test_two_generated_episodes_succeed_and_read_back(demos):
    out, specs = demos
    info = read_info(out)
    assert info["total_episodes"] == 2 and info["features"]["observation.images.wrist"]["shape"] == [32, 32, 3]
    eps = list(iter_episodes(out))
    assert all(e.meta["success"] for e in eps), [e.meta for e in eps]
    noisy = eps[0].vectors
    assert not np.allclose(noisy["action"][:, :3], noisy["action.executed"][:, :3])  # DART: executed != clean
    np.testing.assert_allclose(eps[1].vectors["action"], eps[1].vectors["action.executed"])
    assert eps[0].images("agentview").shape == (len(noisy["action"]), 32, 32, 3)
    assert "quickly" in eps[0].task or "fast" in eps[0].task or "rapidly" in eps[0].task or "hastily" in eps[0].task
    assert eps[1].meta["placement_seed"] is not None and eps[1].meta["init_state"] is None


def test_replaying_the_executed_actions_reproduces_the_episode(demos):
    out, _ = demos
    ep = next(iter_episodes(out))
    env = LiberoEnv(*TASK, image_size=32, settle_steps=OPTS.settle_steps, max_steps=OPTS.max_steps)
    try:
        obs = env.reset(init_state_id=ep.meta["init_state"])
        path = [obs.ee_pos]
        for a in ep.vectors["action.executed"]:
            obs = env.step(a)
            path.append(obs.ee_pos)
    finally:
        env.close()
    assert obs.success == ep.meta["success"] and obs.step == ep.meta["steps"]
    np.testing.assert_allclose(np.asarray(path[:-1]), ep.vectors["observation.state"][:, :3], atol=1e-5)


def test_a_rerun_resumes_without_duplicating_episodes(demos, capsys):
    out, specs = demos
    before = sorted(p.stat().st_mtime_ns for p in (out / "data").rglob("*.parquet"))
    generate(specs, out, OPTS, workers=1)
    after = sorted(p.stat().st_mtime_ns for p in (out / "data").rglob("*.parquet"))
    assert "resuming: 2 of 2" in capsys.readouterr().out
    assert before == after  # finalize found index/task_index already right: nothing rewritten


def test_a_few_training_steps_lower_the_loss(demos, tmp_path):
    from vla_steer_tools.training.minivla_trainer import TrainConfig, Trainer

    out, _ = demos
    tc = TrainConfig(datasets=(str(out),), out=str(tmp_path / "run"), steps=60, batch=32, lr=1e-3, warmup=5,
                     val_fraction=0.0, val_every=10, save_every=15, threads=1, shift_px=0,
                     model={"image_size": 32, "d_model": 64, "n_layers": 1, "ff": 128})
    trainer = Trainer(tc)

    def loss_on_all_frames() -> float:
        idx = np.arange(len(trainer.train))
        return float(np.mean([float(trainer._loss(trainer._batch(trainer.train, c, augment=False))[0])
                              for c in np.array_split(idx, 8)]))

    first = loss_on_all_frames()
    export = trainer.run()
    last = loss_on_all_frames()
    assert last < 0.8 * first, (first, last)
    assert (export / "model.safetensors").is_file() and (tmp_path / "run" / "loss.png").is_file()
    resumed = Trainer(TrainConfig(**{**tc.__dict__, "steps": 61}))
    assert resumed.step == 60  # picks up its checkpoint
