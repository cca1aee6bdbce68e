"""Step-time overhead of DoPr over its base optimizer, measured side by side in one process.

    python bench/optim_overhead.py [--steps 20] [--rounds 5] [--only mlp|unet] [--quick]

For two policy networks of the toolkit — (a) the residual MLP of a state flow policy and (b) a
conditional 1-D temporal U-Net of diffusion_policy's shape (~3 M params, batch 256, horizon 16) —
it times a full training step (forward + backward + optimizer step) for AdamW, DoPr-AdamW, Muon
and DoPr-Muon, with DoPr at its defaults and in the faithful per-batch mode (statistic and inverse
every step), and — for the U-Net — the exact patch factor (conv_factor="full") beside the default
channel⊗tap Kronecker factor, with how closely the default's update follows the exact one
(cosine similarity per layer). Optimizers are timed in interleaved rounds and the median
per-step time is used, so the machine's drift affects every optimizer alike; beside each
measured / floor, "paired" is the median over rounds of DoPr's time / the floor's within a round
(the two run back to back, so a slow stretch of this shared machine slows both; the ratio of two
medians can pair one's slow rounds with the other's fast ones). Prints the ratios
DoPr-X / X and, beside each, DoPr's floor: the base optimizer's step plus the products that exact
AP cannot avoid (per preconditioned layer and step, its gradient matrix times its fixed damped
inverse(s), into preallocated buffers; no statistics, refreshes, checks or bookkeeping), timed in
the same rounds. Goal: DoPr at its defaults <= 1.10 x its floor, on the MLP and the U-Net.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from rounds import paired_ratio

from dopr_robot.optim import AP_DEFAULTS, DoPr, build_optimizer
from dopr_robot.policies.nets import ConditionalUnet1D, ResidualMLP

BATCH, HORIZON, ACTION_DIM, OBS_DIM, OBS_HORIZON = 256, 16, 10, 20, 2
FAITHFUL = dict(statistic="batch", update_every=1, max_rows=None)
# The floor of exact AP: the factor is computed once (warm-up) and never refreshed, so what is
# left is the per-step product G·(Σ+λI)⁻¹, which costs out·d² per layer whatever the settings.
NO_REFRESH = dict(update_every=10**9)
FULL_CONV = dict(conv_factor="full")


def mlp_case():
    cond = OBS_HORIZON * OBS_DIM
    net = ResidualMLP(cond + HORIZON * ACTION_DIM + 1, HORIZON * ACTION_DIM, width=256, depth=3)
    x = torch.randn(BATCH, cond + HORIZON * ACTION_DIM + 1)
    y = torch.randn(BATCH, HORIZON * ACTION_DIM)
    return net, lambda: ((net(x) - y) ** 2).mean()


def unet_case():
    cond = OBS_HORIZON * OBS_DIM
    net = ConditionalUnet1D(ACTION_DIM, cond_dim=cond, down_dims=(48, 96, 192))
    sample = torch.randn(BATCH, HORIZON, ACTION_DIM)
    t = torch.randint(0, 100, (BATCH,))
    c = torch.randn(BATCH, cond)
    noise = torch.randn_like(sample)
    return net, lambda: ((net(sample, t, c) - noise) ** 2).mean()


class Floor:
    """The base optimizer's step, then each preconditioned layer's per-step AP product(s) with
    fixed inverses, exactly as DoPr's layer adapters compute them (for a Linear layer with its
    bias column, the weight block's [out, d] x [d, d] product and the bias column's terms; the
    two small Kronecker products for a conv)."""

    def __init__(self, base: str, model: torch.nn.Module, **settings) -> None:
        self.base = build_optimizer(base, model, **settings)
        probe = DoPr(model)  # only to learn which layers AP preconditions, and their factor sizes
        probe.remove_hooks()
        self.products = []
        for layer in probe._layers:
            inverses = [torch.eye(side) for side in layer.factor_dims]
            grads = [torch.randn_like(p) for p in layer.params()]
            self.products.append((layer, grads, inverses))

    def step(self) -> None:
        self.base.step()
        for layer, grads, inverses in self.products:
            layer.preconditioned(grads, inverses)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)


def time_steps(model, optimizer, loss_fn, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        loss_fn().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return (time.perf_counter() - start) / steps


def measure(case, variants: dict[str, tuple[str, dict]], steps: int, rounds: int) -> dict:
    """Seconds per step for each variant, one value per interleaved round."""
    runs = {}
    for label, (name, settings) in variants.items():
        torch.manual_seed(0)
        model, loss_fn = case()
        if name.startswith("floor-"):
            optimizer = Floor(name.removeprefix("floor-"), model, lr=1e-4)
        else:
            optimizer = build_optimizer(name, model, lr=1e-4, **settings)
        runs[label] = (model, optimizer, loss_fn)
        time_steps(*runs[label], steps=max(3, steps // 5))  # warm-up: allocations, first refresh
    times = {label: [] for label in variants}
    for _ in range(rounds):
        for label, run in runs.items():
            times[label].append(time_steps(*run, steps=steps))
    return times


def kronecker_agreement() -> list[float]:
    """Per conv layer of the U-Net: cosine between the weight updates that the Kronecker and the
    exact patch factor give for the same batch (per-batch statistic, default γ, SGD base so the
    update is the AP gradient itself)."""
    updates = {}
    for factor in ("kron", "full"):
        torch.manual_seed(0)
        model, loss_fn = unet_case()
        settings = dict(FAITHFUL, conv_factor=factor, lr=1.0, weight_decay=0.0)
        optimizer = build_optimizer("dopr-sgd", model, **settings)
        convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv1d)]
        before = [m.weight.detach().clone() for m in convs]
        loss_fn().backward()
        optimizer.step()
        after = [m.weight.detach() for m in convs]
        updates[factor] = [(b - a).flatten() for b, a in zip(before, after, strict=True)]
    return [
        float(torch.nn.functional.cosine_similarity(k, f, dim=0))
        for k, f in zip(updates["kron"], updates["full"], strict=True)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps",
        type=int,
        default=AP_DEFAULTS["update_every"],
        help="steps per timing round (default: one refresh period, so every round pays one)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per optimizer")
    parser.add_argument("--quick", action="store_true", help="few steps, for a smoke run")
    parser.add_argument(
        "--only",
        choices=("mlp", "unet"),
        help="time one network (default: both, then the Kronecker agreement)",
    )
    args = parser.parse_args()
    steps, rounds = (5, 2) if args.quick else (args.steps, args.rounds)
    variants = {
        "adamw": ("adamw", {}),
        "floor-adamw": ("floor-adamw", {}),
        "dopr-adamw": ("dopr-adamw", {}),
        "dopr-adamw (per-batch)": ("dopr-adamw", FAITHFUL),
        "dopr-adamw (no refresh)": ("dopr-adamw", NO_REFRESH),
        "dopr-adamw (full conv)": ("dopr-adamw", FULL_CONV),
        "muon": ("muon", {}),
        "floor-muon": ("floor-muon", {}),
        "dopr-muon": ("dopr-muon", {}),
        "dopr-muon (per-batch)": ("dopr-muon", FAITHFUL),
    }
    defaults = ", ".join(f"{k}={AP_DEFAULTS[k]}" for k in ("statistic", "update_every", "max_rows"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}")
    print(f"DoPr defaults: {defaults}; per-batch: statistic=batch, update_every=1, all rows")
    print("no refresh: factors from the warm-up only (what is left when refreshes cost nothing)")
    print("floor-X: X's step plus the per-step AP products alone, with fixed inverses")
    cases = {"mlp": ("residual MLP", mlp_case), "unet": ("conditional U-Net 1D", unet_case)}
    for key, (title, case) in cases.items():
        if args.only not in (None, key):
            continue
        model, _ = case()
        params = sum(p.numel() for p in model.parameters())
        convs = any(isinstance(m, torch.nn.Conv1d) for m in model.modules())
        chosen = {k: v for k, v in variants.items() if convs or "full conv" not in k}
        rounds_of = measure(case, chosen, steps, rounds)
        times = {label: statistics.median(values) for label, values in rounds_of.items()}
        print(f"\n{title} ({params / 1e6:.2f} M params)")
        for label, seconds in times.items():
            print(f"  {label:<24} {seconds * 1e3:8.2f} ms/step")
        for label, seconds in times.items():
            if label.startswith("dopr-"):
                base = label.split()[0].removeprefix("dopr-")
                floor = times[f"floor-{base}"]
                within = paired_ratio(rounds_of[label], rounds_of[f"floor-{base}"])
                print(
                    f"  ratio {label:<24} / {base}: {seconds / times[base]:.3f}   floor "
                    f"{floor / times[base]:.3f}   measured / floor {seconds / floor:.3f}"
                    f" (paired {within:.3f})"
                )
    if args.only is not None:
        return
    cosines = sorted(kronecker_agreement())
    print(
        f"\nU-Net conv layers, Kronecker vs exact patch factor (one batch, gamma="
        f"{AP_DEFAULTS['gamma']}): update cosine median {statistics.median(cosines):.3f}, "
        f"min {cosines[0]:.3f} over {len(cosines)} layers"
    )


if __name__ == "__main__":
    main()
