"""Execution agents: classical policies, the tabular NFK agent, SB3 agents, the overlay, persistence,
evaluation and the CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import impactlab.rl as rl
from impactlab.errors import PolicyError, SimulationError
from impactlab.rl.policies import Decision, Policy
from impactlab.simulation import LiquidationEnv, LOBExecutionConfig, LOBExecutionEnv


class RandomPolicy(Policy):
    name = "random"

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, obs: Any, env: Any) -> Any:
        return env.action_space.sample() if isinstance(env, LiquidationEnv) else int(self.rng.integers(20))


def _sim_env(**kw: Any) -> LOBExecutionEnv:
    cfg = LOBExecutionConfig(quantity=500, horizon_s=120, step_s=20, action="discrete", **kw)
    return LOBExecutionEnv(cfg)


@pytest.fixture(scope="module")
def goog_setup(data: Path) -> rl.MarketSetup:
    return rl.market_setup(rl.ExecutionTask("GOOG", "replay", quantity=1_000, horizon_s=300, step_s=60))


def test_twap_and_ac_policies_follow_their_schedules(goog_setup: rl.MarketSetup) -> None:
    env = goog_setup.make_env()
    twap = rl.TWAPPolicy().episode(env, 3)
    np.testing.assert_allclose(twap.inventory, np.linspace(1, 0, 6), atol=1e-9)  # market children fill
    ac = goog_setup.almgren_chriss
    steep = rl.AlmgrenChrissPolicy(ac, 1e-2)  # very risk-averse: front-loaded
    r = steep.episode(env, 3)
    hold = ac.trajectory(1e-2)
    np.testing.assert_allclose(r.inventory, np.floor(hold) / hold[0], atol=2e-3)
    assert r.inventory[1] < 0.5  # more than half in the first minute


def test_reset_can_start_at_any_decision_and_inventory(goog_setup: rl.MarketSetup) -> None:
    env = goog_setup.make_env()
    _, info0 = env.reset(seed=5)
    obs, info = env.reset(seed=5, options={"start_step": 3, "inventory": 0.25})
    assert env.steps_taken == 3
    assert env.inventory_left == pytest.approx(250)
    assert obs[0] == pytest.approx(1 - 3 / 5) and obs[1] == pytest.approx(0.25)
    assert info["start_ns"] == info0["start_ns"]  # the same episode, entered later
    with pytest.raises(SimulationError, match="start_step"):
        env.reset(seed=5, options={"start_step": 5})
    with pytest.raises(SimulationError, match="inventory"):
        env.reset(seed=5, options={"inventory": 1.5})


def test_submit_and_leave_keeps_its_queue_position(goog_setup: rl.MarketSetup) -> None:
    env = goog_setup.make_env()
    pol = rl.SubmitAndLeave(3)  # one tick behind the own best: it rests for several decisions
    obs, info = env.reset(seed=11)
    pol.begin(env, info)
    env.trade(**vars(pol.act(obs, env)))
    assert env.venue is not None
    first = env.venue.open_orders
    assert len(first) == 1  # one limit order for everything, still resting after the first minute
    for _ in range(2):
        d = pol.act(obs, env)
        assert d.keep_resting and d.shares == 0
        obs, *_ = env.trade(d.shares, d.aggression, keep_resting=True)
        # the same order rests on (or has filled): no cancel, no replacement
        assert set(env.venue.open_orders) <= set(first)
        assert env.venue.counts["accepted"] == 1 and env.venue.counts["cancelled"] == 0


def test_tabular_agent_learns_a_table_and_round_trips(tmp_path: Path) -> None:
    env = _sim_env()
    agent = rl.TabularQAgent(rl.TabularConfig(episodes=3, inventory_levels=2, spread_buckets=1)).fit(env)
    assert agent.q_ is not None and agent.counts_ is not None
    n_t, n_i = env.config.n_steps, 3
    assert agent.q_.shape[:2] == (n_t, n_i)
    # every (decision, inventory > 0) was visited for every action
    assert (agent.counts_[:, 1:].sum(axis=(2, 3)) > 0).all()
    agent.save(tmp_path / "tab")
    back = rl.load_policy(tmp_path / "tab")
    assert isinstance(back, rl.TabularQAgent)
    seeds = [100, 101, 102]
    a = rl.evaluate(agent, env, seeds).shortfall_bps
    b = rl.evaluate(back, env, seeds).shortfall_bps
    np.testing.assert_array_equal(a, b)


def test_a_tiny_sac_agent_beats_a_random_policy_in_the_ac_world(tmp_path: Path) -> None:
    train = rl.liquidation_env(risk_aversion=1e-6, mark_to_market=False)
    cfg = rl.TrainConfig(algo="sac", timesteps=2000, seed=0, reward_scale=0.01)
    pol = rl.train_agent(train, cfg, kind="liquidation", log_dir=tmp_path / "logs")
    assert (tmp_path / "logs" / "progress.csv").stat().st_size > 0  # training logged to CSV
    judge = rl.liquidation_env(risk_aversion=1e-6)
    rng = np.random.default_rng(0)
    agent = rl.liquidation_check(pol.predict, judge, episodes=400, seed=7)
    random = rl.liquidation_check(lambda o: rng.uniform(0, 1, 1).astype(np.float32), judge, episodes=400, seed=7)
    assert agent["objective"] < random["objective"] - 3 * (agent["objective_se"] + random["objective_se"])
    pol.save(tmp_path / "sac")
    back = rl.load_policy(tmp_path / "sac")
    assert isinstance(back, rl.LearnedPolicy)
    obs, _ = judge.reset(seed=1)
    np.testing.assert_array_equal(back.predict(obs), pol.predict(obs))
    meta = json.loads((tmp_path / "sac" / "policy.json").read_text())
    assert meta["train"]["seed"] == 0 and meta["train"]["timesteps"] == 2000 and meta["algo"] == "sac"


def test_liquidation_check_accepts_the_ac_optimum_and_rejects_twap() -> None:
    env = rl.liquidation_env(risk_aversion=1e-6)
    w = env.world
    from impactlab.schedules import AlmgrenChriss

    hold = AlmgrenChriss(w.quantity, w.horizon, w.n_steps, w.sigma, w.eta, w.gamma, w.epsilon).trajectory(1e-6)

    def optimal(obs: Any) -> Any:
        k = round((1 - float(obs[0])) * w.n_steps)
        return np.array([(hold[k] - hold[k + 1]) / hold[k]], np.float32)

    ok = rl.liquidation_check(optimal, env, episodes=4000, seed=1)
    assert abs(ok["gap_pct"]) < 3 and ok["within_3pct"]
    assert abs(ok["objective"] - ok["optimum"]) < 4 * ok["objective_se"]
    twap = rl.liquidation_check(
        lambda o: np.array([1 / max(round(float(o[0]) * w.n_steps), 1)], np.float32), env, episodes=4000, seed=1
    )
    assert not twap["within_3pct"] and twap["gap_pct"] > 3


def test_overlay_follows_its_baseline_and_delays_carry_over(goog_setup: rl.MarketSetup) -> None:
    env = goog_setup.make_env()
    cum = np.linspace(0, 1, 6)
    ov = rl.ScheduleOverlayEnv(env, cum)
    n_aggr = 4
    follow = 2 * n_aggr  # multiplier 1.0, market
    obs, _ = ov.reset(seed=2)
    assert obs.shape == (7,) and obs[-1] == 0
    path = [env.inventory_left]
    done = False
    while not done:
        obs, _, done, _, _ = ov.step(follow)
        path.append(env.inventory_left)
    np.testing.assert_allclose(np.asarray(path) / 1000, 1 - cum, atol=1e-9)
    ov.reset(seed=2)
    ov.step(0)  # multiplier 0: delay
    assert env.inventory_left == 1000
    obs, *_ = ov.step(follow)  # the next child catches up with the schedule
    assert env.inventory_left == pytest.approx(600)
    with pytest.raises(PolicyError, match="outside"):
        ov.step(99)
    with pytest.raises(PolicyError, match="cumulative"):
        rl.ScheduleOverlayEnv(env, [0, 0.5, 1])


class _Scripted:
    """A stand-in for a trained overlay: plays ``actions`` in turn and keeps what it was shown."""

    kind = "overlay"

    def __init__(self, actions: list[int], side: int = 1) -> None:
        self.actions = list(actions)
        self.meta = {"overlay": {"size_multipliers": [0.0, 0.5, 1.0, 1.5], "limit_offsets_ticks": [1, 0, -1]},
                     "task": {"side": side}}  # fmt: skip
        self.seen: list[Any] = []

    def predict(self, obs: Any) -> Any:
        self.seen.append(np.array(obs))
        return np.int64(self.actions[len(self.seen) - 1])


def test_overlay_child_policy_sees_what_the_training_env_showed_and_decodes_its_actions() -> None:
    from impactlab.execution import ChildContext, OverlayChildPolicy

    env = _sim_env(limit_offsets_ticks=(1, 0, -1))
    cum = np.linspace(0, 1, env.config.n_steps + 1)
    ov = rl.ScheduleOverlayEnv(env, cum)
    actions = [8, 0, 5, 14, 9, 11]  # (mult index × 4 + aggression)
    trained = _Scripted(actions)
    obs, _ = ov.reset(seed=4)
    assert env.venue is not None
    child = OverlayChildPolicy(trained, env.venue)
    q = env.config.quantity
    for a in actions:
        k = env.steps_taken
        filled = q - env.inventory_left
        ctx = ChildContext(k, env.config.n_steps, 1, q, filled, cum[k] * q, cum[k + 1] * q,
                           max(cum[k + 1] * q - filled, 0.0), env.venue.now_ns)  # fmt: skip
        choice = child.choose(ctx)
        np.testing.assert_allclose(trained.seen[-1], obs, rtol=1e-6, atol=1e-6)  # the twin of the env's view
        mult, aggr = ov.decode(a)
        assert choice.shares == pytest.approx(mult * max(cum[k + 1] * q - filled, 0.0))
        assert choice.limit_offset_ticks == (None if aggr == 0 else (1, 0, -1)[aggr - 1])
        obs, *_ = ov.step(a)
    # a sell sees the mirrored book: imbalance and order-flow imbalance change sign, nothing else does
    env.reset(seed=4)
    assert env.venue is not None
    while env.venue.book(1).imbalance == 0:
        env.venue.run_to(env.venue.now_ns + 10**9)
    buy, sell = _Scripted([0, 0]), _Scripted([0, 0])
    ctx = ChildContext(0, 6, 1, q, 0.0, 0.0, q / 6, q / 6, env.venue.now_ns)
    OverlayChildPolicy(buy, env.venue).choose(ctx)
    OverlayChildPolicy(sell, env.venue).choose(dataclasses.replace(ctx, side=-1))
    assert buy.seen[0][3] != 0
    np.testing.assert_allclose(sell.seen[0] * np.array([1, 1, 1, -1, 1, -1, 1]), buy.seen[0])
    with pytest.raises(PolicyError, match="kind 'overlay'"):
        OverlayChildPolicy(rl.TWAPPolicy(), env.venue)
    with pytest.raises(PolicyError, match="outside"):
        OverlayChildPolicy(_Scripted([99]), env.venue).choose(ctx)


def test_evaluation_pairs_episodes_and_reports_intervals(goog_setup: rl.MarketSetup) -> None:
    env = goog_setup.make_env()
    seeds = list(range(20))
    twap = rl.evaluate(rl.TWAPPolicy(), env, seeds)
    rand = rl.evaluate(RandomPolicy(0), env, seeds)
    table = rl.compare([twap, rand], baseline="TWAP").set_index("policy")
    lo, hi = twap.ci95_bps
    assert lo < twap.mean_bps < hi
    d = rand.shortfall_bps - twap.shortfall_bps
    assert table.loc["random", "paired_diff_bps"] == pytest.approx(d.mean())
    assert table.loc["TWAP", "paired_diff_bps"] == 0
    other = rl.evaluate(rl.TWAPPolicy(), env, list(range(1, 21)))
    with pytest.raises(PolicyError, match="different episodes"):
        rl.compare([twap, other])


def test_cluster_robust_interval_widens_when_episodes_share_a_market() -> None:
    rng = np.random.default_rng(3)
    n, per = 400, 20  # 20 clusters of 20 episodes that trade through the same window
    start = np.repeat(np.arange(n // per), per).astype(np.int64) * 600 * 10**9 + rng.integers(0, 10**9, n)
    shared = np.repeat(rng.normal(0, 10, n // per), per)
    ev = rl.Evaluation("x", tuple(range(n)), shared + rng.normal(0, 1, n), np.zeros((n, 2)), start)
    lo, hi = ev.ci95_bps
    clo, chi, groups = ev.cluster_ci95_bps(600)
    assert groups == n // per
    # the i.i.d. interval pretends to have 400 independent episodes; there are 20 markets
    assert (chi - clo) > 3 * (hi - lo)
    iid = rl.Evaluation("y", tuple(range(n)), rng.normal(0, 10, n), np.zeros((n, 2)), np.arange(n) * 10**12)
    a, b = iid.ci95_bps
    c, d, g = iid.cluster_ci95_bps(600)  # one episode per cluster: the same interval up to CR1's n/(n−1)
    assert g == n
    assert (d - c) / (b - a) == pytest.approx(1.0, abs=0.01)
    table = rl.compare([ev, iid], baseline="x", cluster_window_s=600).set_index("policy")
    assert table.loc["x", "clusters"] == n // per
    assert table.loc["y", "paired_diff_cluster_ci95_high"] - table.loc["y", "paired_diff_cluster_ci95_low"] > 0
    with pytest.raises(PolicyError, match="window_s"):
        ev.clusters(0)


def test_policy_files_are_never_unpickled(tmp_path: Path) -> None:
    import pickle

    d = tmp_path / "evil"
    d.mkdir()
    (d / "policy.json").write_text(json.dumps({"format": "impactlab-policy/1", "algo": "ppo"}))
    np.save(d / "payload.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with (d / "weights.npz").open("wb") as f:  # a pickle where the arrays should be
        pickle.dump({"x": 1}, f)
    with pytest.raises(PolicyError, match="not a plain array file"):
        rl.load_policy(d)
    np.savez(d / "weights.npz", w=np.array([{"x": 1}], dtype=object))  # object arrays need pickle
    with pytest.raises(PolicyError):
        rl.load_policy(d)
    (d / "policy.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(PolicyError, match="format"):
        rl.load_policy(d)
    with pytest.raises(PolicyError, match="missing"):
        rl.load_policy(tmp_path / "nowhere")


def test_bad_configs_name_the_field() -> None:
    with pytest.raises(PolicyError, match="algo"):
        rl.TrainConfig(algo="a2c")  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match="episodes"):
        rl.TabularConfig(episodes=0)
    with pytest.raises(PolicyError, match="market"):
        rl.ExecutionTask(market="moon")  # type: ignore[arg-type]
    with pytest.raises(SimulationError, match="quantity"):
        rl.ExecutionTask(quantity=-1)
    with pytest.raises(PolicyError, match="DQN needs a discrete"):
        rl.train_agent(rl.liquidation_env(), rl.TrainConfig(algo="dqn", timesteps=10))
    with pytest.raises(PolicyError, match="unknown task"):
        rl.ExecutionTask.from_dict({"symbol": "GOOG", "colour": "red"})
    assert isinstance(Decision(1.0), Decision)


def test_rl_cli_trains_and_evaluates_on_held_out_data(tmp_path: Path, data: Path) -> None:
    from impactlab.cli.main import app

    out = tmp_path / "tab"
    args = ["rl", "train", "--agent", "tabular", "--market", "replay", "--episodes", "2", "--out", str(out)]
    args += ["--qty", "500", "--horizon", "3m", "--step", "1m", "--json"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert (out / "policy.json").is_file() and (out / "weights.npz").is_file()
    plot = tmp_path / "traj.png"
    ev = ["rl", "evaluate", "--policy", str(out), "--policy", "twap", "--policy", "ac", "--symbol", "AMZN"]
    ev += ["--episodes", "12", "--plot", str(plot), "--json"]
    r = CliRunner().invoke(app, ev)
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["task"]["symbol"] == "AMZN" and res["task"]["quantity"] == 500  # the policy's order, held-out data
    names = [x["policy"] for x in res["results"]]
    assert names == ["tabular Q (NFK)", "TWAP", "Almgren–Chriss"]
    assert all(x["episodes"] == 12 for x in res["results"])
    assert res["cluster_window_s"] == 180  # replay episodes are clustered by start window
    assert all(1 <= x["clusters"] <= 12 for x in res["results"])
    assert plot.stat().st_size > 10_000
    r = CliRunner().invoke(app, ["rl", "evaluate", "--policy", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "missing" in r.output


def test_overlay_agent_trains_saves_and_acts_through_its_baseline(tmp_path: Path, data: Path) -> None:
    from impactlab.cli.rl import build_train

    out = tmp_path / "ov"
    res = build_train("overlay", "replay", out, timesteps=256, quantity=500, horizon_s=180, step_s=60)
    assert res["timesteps"] == 256
    pol = rl.load_policy(out)
    assert isinstance(pol, rl.LearnedPolicy) and pol.kind == "overlay"
    cum = pol.meta["overlay"]["cumulative"]
    assert len(cum) == 4 and cum[0] == 0 and cum[-1] == pytest.approx(1)
    env = rl.market_setup(rl.ExecutionTask.from_dict(pol.meta["task"])).make_env()
    r = pol.episode(env, 7)
    assert r.inventory.shape == (4,) and r.inventory[0] == 1 and r.inventory[-1] == 0
    assert np.isfinite(r.shortfall_bps)
