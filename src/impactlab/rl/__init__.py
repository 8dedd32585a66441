"""Execution agents: the classical schedules as policies, a tabular backward-induction Q-learner
(Nevmyvaka–Feng–Kearns), Stable-Baselines3 agents (PPO, DQN, SAC), the ML overlay on a schedule, and
their evaluation on held-out episodes and data."""

from __future__ import annotations

from impactlab.rl.agents import LearnedPolicy, TrainConfig, load_policy, train_agent
from impactlab.rl.evaluate import Evaluation, compare, evaluate, liquidation_check, trajectories_figure
from impactlab.rl.overlay import ScheduleOverlayEnv
from impactlab.rl.policies import (
    AlmgrenChrissPolicy,
    Decision,
    EpisodeResult,
    Policy,
    SchedulePolicy,
    SubmitAndLeave,
    TWAPPolicy,
    VWAPPolicy,
)
from impactlab.rl.tabular import TabularConfig, TabularQAgent
from impactlab.rl.tasks import ExecutionTask, MarketSetup, liquidation_env, market_setup

__all__ = [
    "AlmgrenChrissPolicy",
    "Decision",
    "EpisodeResult",
    "Evaluation",
    "ExecutionTask",
    "LearnedPolicy",
    "MarketSetup",
    "Policy",
    "ScheduleOverlayEnv",
    "SchedulePolicy",
    "SubmitAndLeave",
    "TWAPPolicy",
    "TabularConfig",
    "TabularQAgent",
    "TrainConfig",
    "VWAPPolicy",
    "compare",
    "evaluate",
    "liquidation_check",
    "liquidation_env",
    "load_policy",
    "market_setup",
    "train_agent",
    "trajectories_figure",
]
