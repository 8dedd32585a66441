"""Deep execution agents (Stable-Baselines3 PPO, DQN, SAC), their training, and policy files.

A policy is saved as a directory: ``policy.json`` (algorithm, network, observation scaling, spaces, the
task and training config, seed, library versions, metrics) and ``weights.npz`` (the network's tensors).
Loading reads the JSON and the arrays with ``allow_pickle=False`` and rebuilds the network: nothing is
unpickled, so a policy file from elsewhere cannot run code.  (Stable-Baselines3's own ``.zip`` format
cloudpickles parts of the model and is not used.)
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from impactlab.errors import PolicyError
from impactlab.rl.overlay import ScheduleOverlayEnv
from impactlab.rl.policies import EpisodeResult, Policy
from impactlab.rl.tabular import TabularQAgent
from impactlab.simulation import LOBExecutionEnv

__all__ = ["LearnedPolicy", "TrainConfig", "load_policy", "train_agent"]

FORMAT = "impactlab-policy/1"
_MAX_FILE_BYTES = 64 << 20


@dataclass(frozen=True)
class TrainConfig:
    """How a deep agent is trained.

    Parameters
    ----------
    algo
        ``"ppo"``, ``"dqn"`` (discrete actions) or ``"sac"`` (box actions).
    timesteps
        Environment steps to train for.
    seed
        Seeds the network, the exploration and the training episodes.
    learning_rate, gamma, net_arch, batch_size
        The usual; γ = 1 because the rewards of an episode add up to minus its shortfall.
    n_steps
        PPO: steps per rollout.
    ent_coef
        PPO: entropy bonus.
    scaling_episodes
        Random-policy episodes whose observations set the fixed observation scaling.
    reward_scale
        Rewards are multiplied by this while training (keeps value targets near 1).
    """

    algo: Literal["ppo", "dqn", "sac"] = "ppo"
    timesteps: int = 50_000
    seed: int = 0
    learning_rate: float = 3e-4
    gamma: float = 1.0
    net_arch: tuple[int, ...] = (64, 64)
    batch_size: int = 64
    n_steps: int = 512
    ent_coef: float = 0.01
    scaling_episodes: int = 16
    reward_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.algo not in ("ppo", "dqn", "sac"):
            raise PolicyError(f"'algo' must be ppo, dqn or sac, got {self.algo!r}")
        if not 1 <= self.timesteps <= 100_000_000:
            raise PolicyError(f"'timesteps' must be in [1, 1e8], got {self.timesteps!r}")
        if not (0 < self.learning_rate < 1 and 0 < self.gamma <= 1):
            raise PolicyError("'learning_rate' must be in (0, 1) and 'gamma' in (0, 1]")
        if not (np.isfinite(self.reward_scale) and self.reward_scale > 0):
            raise PolicyError(f"'reward_scale' must be > 0, got {self.reward_scale!r}")
        if not self.net_arch or any(not 1 <= int(n) <= 4096 for n in self.net_arch):
            raise PolicyError(f"'net_arch' must list layer widths in [1, 4096], got {self.net_arch!r}")
        object.__setattr__(self, "net_arch", tuple(int(n) for n in self.net_arch))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        if set(d) - known:
            raise PolicyError(f"unknown training field(s) {sorted(set(d) - known)}")
        return cls(**{**d, "net_arch": tuple(d.get("net_arch", (64, 64)))})


class _Scaled(gym.ObservationWrapper[NDArray[np.float32], Any, NDArray[np.float32]]):
    """Fixed affine scaling of observations, clipped to ±10."""

    def __init__(self, env: gym.Env[Any, Any], mean: NDArray[np.float64], std: NDArray[np.float64]) -> None:
        super().__init__(env)
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        self.observation_space = spaces.Box(-10.0, 10.0, shape=self.mean.shape, dtype=np.float32)

    def observation(self, observation: NDArray[np.float32]) -> NDArray[np.float32]:
        return np.clip((observation - self.mean) / self.std, -10.0, 10.0).astype(np.float32)


def _scaling(env: gym.Env[Any, Any], episodes: int, seed: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    env.action_space.seed(int(rng.integers(2**31 - 1)))
    obs = []
    for e in range(episodes):
        o, _ = env.reset(seed=seed + 1_000_000 + e)
        obs.append(o)
        done = False
        while not done:
            o, _, term, trunc, _ = env.step(env.action_space.sample())
            obs.append(o)
            done = term or trunc
    x = np.asarray(obs, float)
    std = x.std(axis=0)
    return x.mean(axis=0), np.where(std > 1e-9, std, 1.0)


class _SeededEpisodes(gym.Wrapper[Any, Any, Any, Any]):
    """Each reset without a seed draws the next training episode's seed, so training is reproducible."""

    def __init__(self, env: gym.Env[Any, Any], seed: int) -> None:
        super().__init__(env)
        self._next = seed

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        if seed is None:
            seed, self._next = self._next, self._next + 1
        return self.env.reset(seed=seed, options=options)


def _space_to_dict(sp: spaces.Space[Any]) -> dict[str, Any]:
    if isinstance(sp, spaces.Discrete):
        return {"type": "discrete", "n": int(sp.n)}
    if isinstance(sp, spaces.Box):
        return {"type": "box", "low": sp.low.tolist(), "high": sp.high.tolist()}
    raise PolicyError(f"unsupported action space {sp!r}")


def _space_from_dict(d: dict[str, Any]) -> spaces.Space[Any]:
    if d.get("type") == "discrete" and isinstance(d.get("n"), int) and 1 <= d["n"] <= 10_000:
        return spaces.Discrete(d["n"])
    if d.get("type") == "box":
        lo, hi = np.asarray(d["low"], np.float32), np.asarray(d["high"], np.float32)
        if lo.shape == hi.shape and lo.ndim == 1 and lo.size <= 64:
            return spaces.Box(lo, hi, dtype=np.float32)
    raise PolicyError(f"bad action space in the policy file: {d!r}")


class _Spaces(gym.Env[Any, Any]):
    """An environment with only spaces, to rebuild a network for inference."""

    def __init__(self, obs: spaces.Space[Any], act: spaces.Space[Any]) -> None:
        self.observation_space, self.action_space = obs, act

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        raise PolicyError("inference only")

    def step(self, action: Any) -> Any:
        raise PolicyError("inference only")


def _algo_class(name: str) -> Any:
    from stable_baselines3 import DQN, PPO, SAC

    return {"ppo": PPO, "dqn": DQN, "sac": SAC}[name]


def _build(cfg: TrainConfig, env: gym.Env[Any, Any], *, verbose: int = 0) -> Any:
    cls = _algo_class(cfg.algo)
    kw: dict[str, Any] = {
        "learning_rate": cfg.learning_rate,
        "gamma": cfg.gamma,
        "seed": cfg.seed,
        "verbose": verbose,
        "device": "cpu",
        "policy_kwargs": {"net_arch": list(cfg.net_arch)},
    }
    if cfg.algo == "ppo":
        kw |= {"n_steps": cfg.n_steps, "batch_size": cfg.batch_size, "ent_coef": cfg.ent_coef}
    elif cfg.algo == "dqn":
        kw |= {"batch_size": cfg.batch_size, "learning_starts": min(1000, cfg.timesteps // 10)}
        kw |= {"exploration_fraction": 0.3, "target_update_interval": 500, "train_freq": 4}
    else:
        kw |= {"batch_size": cfg.batch_size, "learning_starts": min(1000, cfg.timesteps // 10)}
    return cls("MlpPolicy", env, **kw)


class LearnedPolicy(Policy):
    """A trained deep policy, acting deterministically.

    ``kind`` says which environment it acts in: ``"lob"`` (:class:`LOBExecutionEnv` actions), ``"overlay"``
    (:class:`ScheduleOverlayEnv` around it, with the saved baseline) or ``"liquidation"``.
    """

    def __init__(self, model: Any, meta: dict[str, Any]) -> None:
        self.model = model
        self.meta = meta
        self.kind = str(meta["kind"])
        self.name = str(meta.get("name", f"{meta['train']['algo'].upper()} ({self.kind})"))
        self._mean = np.asarray(meta["obs_mean"], np.float32)
        self._std = np.asarray(meta["obs_std"], np.float32)

    def predict(self, obs: NDArray[np.float32]) -> Any:
        x = np.clip((np.asarray(obs, np.float32) - self._mean) / self._std, -10, 10)
        a, _ = self.model.predict(x, deterministic=True)
        return a

    def act(self, obs: NDArray[np.float32], env: LOBExecutionEnv) -> Any:
        return self.predict(obs)

    def wrap(self, env: LOBExecutionEnv) -> gym.Env[Any, Any]:
        if self.kind == "overlay":
            o = self.meta["overlay"]
            return ScheduleOverlayEnv(env, o["cumulative"], size_multipliers=o["size_multipliers"])
        return env

    def episode(self, env: LOBExecutionEnv, seed: int) -> EpisodeResult:
        if self.kind == "lob":
            return super().episode(env, seed)
        w = self.wrap(env)
        obs, info = w.reset(seed=seed)
        q = env.config.quantity
        inv = [env.inventory_left / q]
        total, done = 0.0, False
        step_info: dict[str, Any] = {}
        while not done:
            obs, r, term, trunc, step_info = w.step(self.predict(obs))
            total += float(r)
            done = term or trunc
            inv.append(env.inventory_left / q)
        return EpisodeResult(float(step_info["shortfall_bps"]), total, np.asarray(inv), int(info["start_ns"]))

    def save(self, directory: str | Path) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        sd = {k: v.detach().cpu().numpy() for k, v in self.model.policy.state_dict().items()}
        np.savez(d / "weights.npz", **sd)
        (d / "policy.json").write_text(json.dumps(self.meta, indent=2))
        return d


def train_agent(
    env: gym.Env[Any, Any],
    config: TrainConfig,
    *,
    kind: Literal["lob", "overlay", "liquidation"] = "lob",
    task: dict[str, Any] | None = None,
    log_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    extra: dict[str, Any] | None = None,
) -> LearnedPolicy:
    """Train a Stable-Baselines3 agent on ``env``.

    Observations are scaled by the mean and standard deviation of ``config.scaling_episodes`` random
    episodes (fixed, saved with the policy).  ``log_dir`` receives SB3's ``progress.csv``; ``progress(done,
    total)`` is called as steps complete (the CLI draws a progress bar with it).
    """
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.logger import configure

    if config.algo == "dqn" and not isinstance(env.action_space, spaces.Discrete):
        raise PolicyError("DQN needs a discrete action space (task action='discrete')")
    if config.algo == "sac" and not isinstance(env.action_space, spaces.Box):
        raise PolicyError("SAC needs a box action space (task action='box')")
    import torch

    torch.manual_seed(config.seed)
    mean, std = _scaling(env, config.scaling_episodes, config.seed)
    scaled: gym.Env[Any, Any] = _Scaled(env, mean, std)
    if config.reward_scale != 1.0:
        scaled = gym.wrappers.TransformReward(scaled, lambda r: config.reward_scale * float(r))
    wrapped = _SeededEpisodes(scaled, config.seed)
    model = _build(config, wrapped)
    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        model.set_logger(configure(str(log_dir), ["csv"]))

    class _Progress(BaseCallback):
        def _on_step(self) -> bool:
            if progress is not None and self.num_timesteps % 64 == 0:
                progress(self.num_timesteps, config.timesteps)
            return True

    t0 = time.process_time()
    w0 = time.perf_counter()
    try:
        model.learn(total_timesteps=config.timesteps, callback=_Progress())
    finally:
        if log_dir is not None:
            model.logger.close()
    if progress is not None:
        progress(config.timesteps, config.timesteps)
    import stable_baselines3

    meta = {
        "format": FORMAT,
        "algo": config.algo,
        "kind": kind,
        "train": {**asdict(config), "net_arch": list(config.net_arch)},
        "task": task or {},
        "obs_mean": mean.tolist(),
        "obs_std": std.tolist(),
        "observation_dim": int(mean.size),
        "action_space": _space_to_dict(env.action_space),
        "cpu_s": time.process_time() - t0,
        "wall_s": time.perf_counter() - w0,
        "versions": {
            "stable_baselines3": stable_baselines3.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        **(extra or {}),
    }
    return LearnedPolicy(model, meta)


def load_policy(directory: str | Path) -> Policy:
    """Load a saved policy (deep or tabular) from ``directory`` (``policy.json`` + ``weights.npz``)."""
    d = Path(directory)
    meta_path, w_path = d / "policy.json", d / "weights.npz"
    for p in (meta_path, w_path):
        if not p.is_file():
            raise PolicyError(f"{d}: missing {p.name}")
        if p.stat().st_size > _MAX_FILE_BYTES:
            raise PolicyError(f"{p}: {p.stat().st_size:,} bytes is larger than a policy file can be")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PolicyError(f"{meta_path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise PolicyError(f"{meta_path}: field 'format' must be {FORMAT!r}, got {meta.get('format')!r}")
    try:
        with np.load(w_path, allow_pickle=False) as z:
            weights = {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        raise PolicyError(f"{w_path}: not a plain array file ({e})") from None
    if meta.get("algo") == "tabular":
        return TabularQAgent.from_saved(meta, weights)
    cfg = TrainConfig.from_dict(meta["train"])
    if meta.get("kind") not in ("lob", "overlay", "liquidation"):
        raise PolicyError(f"{meta_path}: field 'kind' must be lob, overlay or liquidation, got {meta.get('kind')!r}")
    dim = int(meta["observation_dim"])
    if not 1 <= dim <= 64 or len(meta["obs_mean"]) != dim or len(meta["obs_std"]) != dim:
        raise PolicyError(f"{meta_path}: observation scaling does not match 'observation_dim' {dim}")
    obs_space = spaces.Box(-10.0, 10.0, shape=(dim,), dtype=np.float32)
    model = _build(cfg, _Spaces(obs_space, _space_from_dict(meta["action_space"])))
    import torch

    try:
        model.policy.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
    except RuntimeError as e:
        raise PolicyError(f"{w_path}: the weights do not fit the saved network ({str(e)[:300]})") from None
    return LearnedPolicy(model, meta)
