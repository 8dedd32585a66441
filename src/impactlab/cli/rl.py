"""``impactlab rl train`` and ``impactlab rl evaluate``: execution agents and their honest comparison with
the classical schedules."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from impactlab.cli.schedules import _cli
from impactlab.errors import PolicyError

rl_app = typer.Typer(help="Reinforcement-learning execution agents: train, evaluate against TWAP/VWAP/AC.")

BUILTIN = ("twap", "twap-limit", "vwap", "ac", "sal")


class Agent(StrEnum):
    ppo = "ppo"
    dqn = "dqn"
    sac = "sac"
    tabular = "tabular"
    overlay = "overlay"


class Market(StrEnum):
    replay = "replay"
    sim = "sim"
    liquidation = "liquidation"


def _bar(prog: Any, description: str) -> Callable[[int, int], None]:
    task = prog.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        prog.update(task, completed=done, total=total)

    return update


def build_train(
    agent: str,
    market: str,
    out: Path,
    *,
    symbol: str = "GOOG",
    timesteps: int = 50_000,
    episodes: int = 100,
    seed: int = 0,
    quantity: float = 2_000.0,
    horizon_s: float = 600.0,
    step_s: float = 60.0,
    risk_aversion: float = 1e-6,
    algo: str = "ppo",
    data: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Train one agent and save it under ``out``; returns what ``rl train --json`` prints."""
    from impactlab.rl import (
        ExecutionTask,
        ScheduleOverlayEnv,
        TabularConfig,
        TabularQAgent,
        TrainConfig,
        liquidation_check,
        liquidation_env,
        market_setup,
        train_agent,
    )

    log_dir = out / "logs"
    if market == "liquidation":
        if agent not in ("ppo", "sac"):
            raise PolicyError("the Almgren–Chriss world has box actions: use --agent ppo or sac")
        # train on the control-variate reward (same optimum, far less noise); judge on real costs
        liq = liquidation_env(risk_aversion=risk_aversion, mark_to_market=False)
        cfg = TrainConfig(algo=agent, timesteps=timesteps, seed=seed, reward_scale=0.01)  # type: ignore[arg-type]
        pol = train_agent(liq, cfg, kind="liquidation", log_dir=log_dir, progress=progress)
        check = liquidation_check(pol.predict, liquidation_env(risk_aversion=risk_aversion), seed=seed + 10**6)
        pol.meta["liquidation_check"] = check
        pol.meta["risk_aversion"] = risk_aversion
        pol.save(out)
        return {"agent": agent, "market": market, "out": str(out), "seed": seed, "liquidation_check": check}
    action = "box" if agent == "sac" else "discrete"
    task = ExecutionTask(symbol, market, 1, quantity, horizon_s, step_s, action)  # type: ignore[arg-type]
    ms = market_setup(task, root=data, risk_aversion=risk_aversion)
    env = ms.make_env()
    res: dict[str, Any] = {"agent": agent, "market": market, "symbol": symbol, "out": str(out), "seed": seed}
    if agent == "tabular":
        tab = TabularQAgent(TabularConfig(episodes=episodes, seed=seed)).fit(env, progress=progress)
        tab.save(out, extra={"task": task.to_dict(), "seed": seed})
        res["states_visited"] = float((tab.counts_ > 0).mean()) if tab.counts_ is not None else 0.0
        return res
    cfg = TrainConfig(algo=algo if agent == "overlay" else agent, timesteps=timesteps, seed=seed)  # type: ignore[arg-type]
    if agent == "overlay":
        hold = ms.almgren_chriss.trajectory(risk_aversion)
        cum = (1 - hold / hold[0]).tolist()
        mults = (0.0, 0.5, 1.0, 1.5)
        wrapped = ScheduleOverlayEnv(env, cum, size_multipliers=mults)
        extra: dict[str, Any] = {
            "overlay": wrapped.describe() | {"baseline": "Almgren–Chriss"},
            "name": f"AC overlay ({cfg.algo.upper()})",
        }
        pol = train_agent(
            wrapped, cfg, kind="overlay", task=task.to_dict(), log_dir=log_dir, progress=progress, extra=extra
        )
    else:
        pol = train_agent(env, cfg, kind="lob", task=task.to_dict(), log_dir=log_dir, progress=progress)
    pol.save(out)
    res |= {"cpu_s": pol.meta["cpu_s"], "wall_s": pol.meta["wall_s"], "timesteps": timesteps}
    return res


def _builtin(name: str, ms: Any, env: Any, train_seeds: list[int]) -> Any:
    from impactlab.rl import AlmgrenChrissPolicy, SubmitAndLeave, TWAPPolicy, VWAPPolicy

    if name == "twap":
        return TWAPPolicy()
    if name == "twap-limit":
        p = TWAPPolicy(aggression=2)
        p.name = "TWAP (limit at the own best)"
        return p
    if name == "vwap":
        return VWAPPolicy(ms.volume_curve, ms.seconds_since_open)
    if name == "ac":
        return AlmgrenChrissPolicy(ms.almgren_chriss, ms.risk_aversion)
    return SubmitAndLeave.optimised(env, train_seeds)


def build_evaluate(
    policies: list[str],
    *,
    symbol: str = "AMZN",
    market: str | None = None,
    episodes: int = 500,
    seed: int = 100_000,
    baseline: str = "TWAP",
    plot: Path | None = None,
    data: Path | None = None,
    progress: Callable[[str], Callable[[int, int], None]] | None = None,
) -> dict[str, Any]:
    """Evaluate saved policies and built-in schedules on the same held-out episodes."""
    from impactlab.rl import (
        ExecutionTask,
        LearnedPolicy,
        TabularQAgent,
        compare,
        evaluate,
        liquidation_check,
        liquidation_env,
        load_policy,
        market_setup,
        trajectories_figure,
    )

    if not policies:
        raise PolicyError("give at least one --policy (a saved policy directory or one of " + ", ".join(BUILTIN) + ")")
    if not 1 <= episodes <= 100_000:
        raise PolicyError(f"'episodes' must be in [1, 100000], got {episodes}")
    loaded = {p: load_policy(p) for p in policies if p not in BUILTIN}
    liq = [p for p, pol in loaded.items() if isinstance(pol, LearnedPolicy) and pol.kind == "liquidation"]
    if liq:
        if len(liq) != len(policies):
            raise PolicyError("an Almgren–Chriss-world policy is evaluated on its own")
        out: dict[str, Any] = {"market": "liquidation", "policies": []}
        for p in liq:
            lp = loaded[p]
            assert isinstance(lp, LearnedPolicy)
            lenv = liquidation_env(risk_aversion=float(lp.meta.get("risk_aversion", 1e-6)))
            out["policies"].append({"policy": p, **liquidation_check(lp.predict, lenv, episodes=episodes, seed=seed)})
        return out
    tasks = []
    for pol in loaded.values():
        meta = pol.meta if isinstance(pol, LearnedPolicy) else {}
        t = meta.get("task") or (pol.task_.get("task") if isinstance(pol, TabularQAgent) else None)
        if t:
            tasks.append(ExecutionTask.from_dict(t))
    base = tasks[0] if tasks else ExecutionTask(symbol)
    for t in tasks[1:]:
        if (t.quantity, t.horizon_s, t.step_s, t.side) != (base.quantity, base.horizon_s, base.step_s, base.side):
            raise PolicyError("the saved policies were trained on different orders (quantity, horizon or step)")
    task = base.replace(symbol=symbol, market=market or base.market)
    ms = market_setup(task, root=data)
    seeds = list(range(seed, seed + episodes))
    train_seeds = list(range(50))
    evals = []
    for p in policies:
        env = ms.make_env()
        found = loaded.get(p)
        if isinstance(found, LearnedPolicy):
            env = market_setup(task.replace(action=found.meta["task"]["action"]), root=data).make_env()
        chosen = found if found is not None else _builtin(p, ms, env, train_seeds)
        ev = evaluate(chosen, env, seeds, progress=progress(chosen.name) if progress else None)
        evals.append(ev)
    names = [e.name for e in evals]
    if len(set(names)) != len(names):
        raise PolicyError(f"two policies have the same name: {names}")
    # replay episodes within one horizon of each other share a market: cluster the intervals by start window
    window = task.horizon_s if task.market == "replay" else None
    table = compare(evals, baseline=baseline if baseline in names else names[0], cluster_window_s=window)
    res: dict[str, Any] = {
        "task": task.to_dict(),
        "episodes": episodes,
        "first_seed": seed,
        "baseline": baseline if baseline in names else names[0],
        "cluster_window_s": window,
        "results": json.loads(table.to_json(orient="records")),
        "mean_inventory_paths": {e.name: e.inventory.mean(axis=0).tolist() for e in evals},
    }
    if plot is not None:
        res["plot"] = str(trajectories_figure(evals, plot, title=f"{task.symbol} {task.market}, {episodes} episodes"))
    return res


@rl_app.command("train")
def train_cmd(
    agent: Annotated[Agent, typer.Option(help="ppo, dqn, sac, tabular (NFK) or overlay (on the AC schedule).")],
    out: Annotated[Path, typer.Option(help="Directory to save the policy in (policy.json + weights.npz).")],
    market: Annotated[Market, typer.Option(help="replay, sim, or liquidation (the AC world).")] = Market.replay,
    symbol: Annotated[str, typer.Option(help="LOBSTER symbol to train on.")] = "GOOG",
    timesteps: Annotated[int, typer.Option(help="Deep agents: environment steps.")] = 50_000,
    episodes: Annotated[int, typer.Option(help="Tabular: training episodes.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the network and the training episodes.")] = 0,
    qty: Annotated[float, typer.Option(help="Shares to buy per episode.")] = 2_000.0,
    horizon: Annotated[str, typer.Option(help="Horizon per episode, e.g. 10m.")] = "10m",
    step: Annotated[str, typer.Option(help="Time between decisions, e.g. 1m.")] = "1m",
    risk_aversion: Annotated[float, typer.Option("--risk-aversion", help="λ per currency (AC).")] = 1e-6,
    algo: Annotated[str, typer.Option(help="Overlay: ppo or dqn.")] = "ppo",
    data: Annotated[Path | None, typer.Option(help="Market data directory.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train an execution agent with a progress bar; logs go to OUT/logs/progress.csv."""
    main = _cli()
    if not 1 <= timesteps <= 10_000_000:
        raise typer.BadParameter(f"'timesteps' must be in [1, 1e7], got {timesteps}")
    with main._errors(), main._progress() as prog:
        res = build_train(
            agent.value, market.value, out, symbol=symbol, timesteps=timesteps, episodes=episodes, seed=seed,
            quantity=qty, horizon_s=main.parse_duration_s(horizon), step_s=main.parse_duration_s(step),
            risk_aversion=risk_aversion, algo=algo, data=data, progress=_bar(prog, f"training {agent.value}"),
        )  # fmt: skip
    if as_json:
        main._emit(res)
        return
    main.out.print(f"saved {agent.value} policy to {out}")
    for k, v in res.items():
        if k not in ("out",):
            main.out.print(f"  {k}: {v}")


@rl_app.command("evaluate")
def evaluate_cmd(
    policy: Annotated[
        list[str], typer.Option(help="A saved policy directory, or twap, twap-limit, vwap, ac, sal. Repeat.")
    ],
    symbol: Annotated[str, typer.Option(help="LOBSTER symbol to evaluate on (held-out data).")] = "AMZN",
    market: Annotated[Market | None, typer.Option(help="replay or sim (default: the policy's).")] = None,
    episodes: Annotated[int, typer.Option(help="Episodes per policy.")] = 500,
    seed: Annotated[int, typer.Option(help="First held-out episode seed (training used 0…).")] = 100_000,
    baseline: Annotated[str, typer.Option(help="Policy name the others are compared with.")] = "TWAP",
    plot: Annotated[Path | None, typer.Option(help="Write the trajectory plot (PNG) here.")] = None,
    data: Annotated[Path | None, typer.Option(help="Market data directory.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Mean, standard deviation and 95% CI of the shortfall of each policy on the same episodes."""
    main = _cli()
    with main._errors(), main._progress() as prog:
        res = build_evaluate(
            policy, symbol=symbol, market=market.value if market else None, episodes=episodes, seed=seed,
            baseline=baseline, plot=plot, data=data, progress=lambda name: _bar(prog, name),
        )  # fmt: skip
    if as_json:
        main._emit(res)
        return
    if res.get("market") == "liquidation":
        for r in res["policies"]:
            main.out.print(
                f"{r['policy']}: E+λV = {r['objective']:,.0f} ± {r['objective_se']:,.0f}, optimum "
                f"{r['optimum']:,.0f} (gap {r['gap_pct']:+.2f}%, within 3%: {r['within_3pct']})"
            )
        return
    t = Table(title=f"{res['task']['symbol']} {res['task']['market']}: {res['episodes']} episodes")
    clustered = res["cluster_window_s"] is not None
    cols = ["policy", "mean bps", "std", "95% CI"] + (["95% CI (clustered)"] if clustered else [])
    for c in [*cols, f"vs {res['baseline']}", "paired diff (95% CI)"]:
        t.add_column(c, justify="left" if c == "policy" else "right")
    sfx = "_cluster" if clustered else ""
    for r in res["results"]:
        cells = [r["policy"], f"{r['mean_bps']:.2f}", f"{r['std_bps']:.2f}"]
        cells.append(f"[{r['ci95_low_bps']:.2f}, {r['ci95_high_bps']:.2f}]")
        if clustered:
            cells.append(f"[{r['ci95_cluster_low_bps']:.2f}, {r['ci95_cluster_high_bps']:.2f}]")
        cells.append(f"{r.get('improvement_vs_baseline_pct', np.nan):+.1f}%")
        cells.append(
            f"{r.get('paired_diff_bps', np.nan):+.2f} [{r.get(f'paired_diff{sfx}_ci95_low', np.nan):+.2f}, "
            f"{r.get(f'paired_diff{sfx}_ci95_high', np.nan):+.2f}]"
        )
        t.add_row(*cells)
    main.out.print(t)
    if clustered:
        main.out.print(
            f"clustered: episodes grouped by {res['cluster_window_s']:.0f}-s start window "
            f"({res['results'][0]['clusters']} windows); the paired CI is clustered too"
        )
    if plot is not None:
        main.out.print(f"trajectories written to {res['plot']}")
