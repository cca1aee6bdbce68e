"""The training loop: behaviour cloning of a policy on a zarr store with any optimizer.

Determinism and resume. Batch b of step t is a function of (seed, t) only: the windows come
from a seeded permutation per epoch, the diffusion/flow noise from `StepNoise(seed, t)`, and
image crops from torch's generator reseeded per step. The optimizer, LR schedule and EMA are
restored from the checkpoint. So a run resumed from step k on CPU continues bitwise as if it had
never stopped (tested), and under DDP every rank takes its rows of the same global batch.

Distributed. Under `torchrun` (WORLD_SIZE > 1) the policy is wrapped in DistributedDataParallel
(gloo on CPU, nccl on CUDA); DoPr averages its activation statistics across ranks itself. Rank 0
validates, logs and writes checkpoints.

A non-finite loss stops the run with one sentence; the last checkpoint written before it is
kept, and nothing is written after it.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from diffusers.optimization import get_cosine_schedule_with_warmup

from .. import stop
from ..datasets import ReplayBuffer, SequenceDataset, split_episodes
from ..devices import resolve_device
from ..disk import write_text_atomically, writing
from ..errors import UserError
from ..folder_lock import FolderLock, has_content
from ..optim import build_optimizer
from ..policies import PolicyConfig, ShapeMeta, StepNoise, build_policy
from ..provenance import versions
from ..torch_compat import foreach_mul_, foreach_norm, set_last_lr
from . import fast_path
from .checkpoint import (
    BrokenCheckpoint,
    load_optimizer_state,
    load_weights,
    read_config,
    read_trainer_state,
    save_checkpoint,
    set_aside,
)
from .config import TrainConfig
from .ema import EMA
from .run_dir import RunDir, differing_run_settings

VAL_SEED_OFFSET = 10_000_019  # validation noise: fixed, and never a training step's


class TrainingDiverged(UserError):
    """The loss became NaN or infinite."""


@dataclass
class TrainResult:
    run: Path
    steps: int
    final_loss: float
    val_loss: float | None
    val_loss_ema: float | None
    checkpoint: Path


@dataclass
class Rank:
    index: int = 0
    world: int = 1
    owns_group: bool = False  # this trainer started the process group, so it ends it

    @property
    def main(self) -> bool:
        return self.index == 0


def _rank_device(device: torch.device) -> torch.device:
    """Under torchrun each rank takes its own GPU (`cuda:LOCAL_RANK`) unless one was named: two
    NCCL ranks on one device are refused by NCCL."""
    local_rank = os.environ.get("LOCAL_RANK")
    if device.type != "cuda" or device.index is not None or local_rank is None:
        return device
    device = torch.device("cuda", int(local_rank))
    torch.cuda.set_device(device)
    return device


def _start_distributed(device: torch.device) -> Rank:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Rank()
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Rank(dist.get_rank(), dist.get_world_size(), owns_group)


def shape_meta_of(buffer: ReplayBuffer, obs_keys: list[str]) -> ShapeMeta:
    keys = buffer.keys
    missing = [key for key in [*obs_keys, "action"] if key not in keys]
    if missing:
        raise UserError(
            f"{buffer.path} has no key(s) {missing}; it has {sorted(keys)} "
            "(choose obs_keys from these)"
        )
    return ShapeMeta(
        obs={key: list(keys[key][0]) for key in obs_keys}, action_dim=int(keys["action"][0][0])
    )


class Trainer:
    def __init__(self, train: TrainConfig, policy: PolicyConfig, progress: bool = True):
        self.train_config, self.policy_config = train, policy
        self.progress = progress
        self.device = _rank_device(resolve_device(train.device))
        self.rank = _start_distributed(self.device)
        self.run = RunDir(train.out)
        buffer = ReplayBuffer.open(train.data)
        self.shape_meta = shape_meta_of(buffer, policy.obs_keys)
        train_episodes, val_episodes = split_episodes(
            buffer.n_episodes, train.val_ratio, train.seed
        )
        if len(train_episodes) == 0 or len(val_episodes) == 0:
            raise UserError(
                f"{buffer.path} has {buffer.n_episodes} episode(s): too few to hold out "
                f"val_ratio={train.val_ratio} for validation and still train"
            )
        window = dict(
            obs_keys=policy.obs_keys,
            pred_horizon=policy.pred_horizon,
            obs_horizon=policy.obs_horizon,
            action_horizon=policy.action_horizon,
        )
        self.dataset = SequenceDataset(buffer, episodes=train_episodes, **window)
        self.val_dataset = SequenceDataset(buffer, episodes=val_episodes, **window)
        torch.manual_seed(train.seed)
        try:
            self.policy = build_policy(policy, self.shape_meta)
        except ValueError as error:
            raise UserError(str(error)) from None
        self.policy.fit_normalizer(self._training_rows(buffer, train_episodes))
        self.policy.to(self.device)
        self.model: torch.nn.Module = self.policy
        if self.rank.world > 1:
            self.model = torch.nn.parallel.DistributedDataParallel(self.policy)
        self._params = list(self.policy.parameters())
        fast_path.apply(self.policy, train, self.device)
        try:
            self.optimizer = build_optimizer(
                train.optimizer,
                self.policy,
                lr=train.lr,
                weight_decay=train.weight_decay,
                **fast_path.optimizer_settings(train),
            )
        except (TypeError, ValueError) as error:
            raise UserError(f"optimizer settings: {error}") from None
        self.scheduler = get_cosine_schedule_with_warmup(
            self.optimizer, train.warmup_steps, train.steps
        )
        self.ema = EMA(self.policy, train.ema_decay) if train.ema_decay > 0 else None
        self.step = 0
        self.last_val: dict[str, float] = {}
        self._epoch_order: tuple[int, np.ndarray] = (-1, np.empty(0, np.int64))
        self._has_images = any(self.shape_meta.is_image(k) for k in policy.obs_keys)

    # ---- data --------------------------------------------------------------------------------

    def _training_rows(self, buffer: ReplayBuffer, episodes: np.ndarray) -> dict[str, np.ndarray]:
        """Rows of the training episodes only: the normaliser never sees validation data."""
        ends = buffer.episode_ends
        starts = np.concatenate([[0], ends[:-1]])
        rows = np.concatenate([np.arange(starts[e], ends[e]) for e in episodes])
        keys = [k for k in self.policy_config.obs_keys if not self.shape_meta.is_image(k)]
        return {key: self.dataset.data[key][rows] for key in [*keys, "action"]}

    def batch_indices(self, step: int) -> np.ndarray:
        """This rank's window indices at `step`: a seeded permutation per epoch, sliced."""
        size, windows = self.train_config.batch_size, len(self.dataset)
        per_epoch = max(1, windows // size)
        epoch, position = divmod(step, per_epoch)
        if self._epoch_order[0] != epoch:
            order = np.random.default_rng([self.train_config.seed, epoch]).permutation(windows)
            if windows < size:  # tiny datasets: repeat the permutation to fill a batch
                order = np.resize(order, size)
            self._epoch_order = (epoch, order)
        order = self._epoch_order[1]
        chosen = order[position * size : (position + 1) * size]
        return chosen[self._rows(size)]

    def _rows(self, size: int) -> slice:
        if size % self.rank.world:
            raise UserError(
                f"batch_size {size} must be divisible by the {self.rank.world} processes"
            )
        share = size // self.rank.world
        return slice(self.rank.index * share, (self.rank.index + 1) * share)

    # ---- checkpoints -------------------------------------------------------------------------

    def config_record(self) -> dict[str, Any]:
        return {
            "policy": self.policy_config.to_dict(),
            "train": self.train_config.to_dict(),
            "shape_meta": self.shape_meta.to_dict(),
            "versions": versions(),
        }

    def save(self, trainer_state: dict[str, Any]) -> Path:
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}
        return save_checkpoint(
            self.run.path,
            self.step,
            self.policy,
            self.ema.model if self.ema else None,
            state,
            self.config_record(),
            trainer_state,
        )

    def resume(self) -> int | None:
        """Load the newest checkpoint that loads; returns the step count the run was started
        for. A broken one (`BrokenCheckpoint`) is set aside as `step_<n>.broken`, said on
        stderr, and the next older one is tried; other settings are refused, not skipped.

        `steps` may grow (extending a finished run): the cosine schedule is then recomputed over
        the new total, so the lr at the resumed step rises from where the old schedule had
        decayed it (near 0 at the old end) to the new schedule's value at that step."""
        candidates = self.run.checkpoints_newest_first()
        if not candidates:
            raise UserError(f"{self.run.path} holds no checkpoint to resume from")
        problems = []
        for checkpoint in candidates:
            try:
                saved_steps = self._load_checkpoint(checkpoint)
            except BrokenCheckpoint as error:
                problems.append(str(error))
                kept = set_aside(checkpoint)
                print(f"dopr-robot: {error}; set aside as {kept.name}", file=sys.stderr)
                continue
            if problems:
                print(f"dopr-robot: resuming from {checkpoint}", file=sys.stderr)
            return saved_steps
        raise UserError(f"{self.run.path}: no checkpoint loads ({'; '.join(problems)})")

    def _check_settings(self, checkpoint: Path, saved: dict[str, Any]) -> Any:
        mine = self.config_record()
        saved_steps = saved.get("train", {}).get("steps")
        if isinstance(saved_steps, int) and self.train_config.steps < saved_steps:
            raise UserError(
                f"{checkpoint} was started for {saved_steps} steps; a resume may extend a run "
                f"(more --steps) but not shorten it to {self.train_config.steps}"
            )
        # a larger `steps` extends the run: the only setting a resume may change
        sections = {name: mine[name] for name in ("policy", "train", "shape_meta")}
        found = differing_run_settings(saved, sections, train_ignored=("steps",))
        if found is not None:
            section, differing = found
            raise UserError(
                f"{checkpoint} was written with other {section} settings "
                f"({', '.join(differing)}); resume with the same settings or train into a "
                "new --out"
            )
        return saved_steps

    def _load_checkpoint(self, checkpoint: Path) -> Any:
        saved_steps = self._check_settings(checkpoint, read_config(checkpoint))
        step = int(read_trainer_state(checkpoint)["step"])
        load_weights(self.policy, checkpoint / "model.safetensors", self.device)
        if self.ema is not None:
            load_weights(self.ema.model, checkpoint / "ema.safetensors", self.device)
        state = load_optimizer_state(checkpoint)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if saved_steps != self.train_config.steps:  # extended: the new schedule from this step on
            scheduler = self.scheduler
            lrs = [
                base * rule(scheduler.last_epoch)
                for base, rule in zip(scheduler.base_lrs, scheduler.lr_lambdas, strict=True)
            ]
            for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
                group["lr"] = lr
            set_last_lr(scheduler, lrs)
        self.step = step
        _truncate_metrics(self.run.metrics, self.step)
        return saved_steps

    # ---- the loop ----------------------------------------------------------------------------

    def autocast(self):
        if self.train_config.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def train_step(self) -> dict[str, float]:
        config = self.train_config
        if self._has_images:
            self._seed_image_crops()
        batch = self.dataset[self.batch_indices(self.step)]
        noise = StepNoise(
            config.seed, self.step, config.batch_size, self._rows(config.batch_size), self.device
        )
        if not self.policy.training:  # validation leaves it in eval; .train() walks every module
            self.model.train()
        with self.autocast():
            loss, _ = self.model(batch, noise)
        loss_value = loss.item()
        if not self._finite(loss, loss_value):
            raise TrainingDiverged(
                f"the loss became {loss_value} at step {self.step}; stopped, and the last good "
                f"checkpoint is {self.run.latest_checkpoint() or 'none (none was written yet)'}"
                "; try a lower lr or stronger grad_clip"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float("nan")
        if config.grad_clip > 0:
            grad_norm = self._clip_gradients(config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.policy, self.step)
        self.step += 1
        return {"loss": loss_value, "grad_norm": grad_norm, "lr": self.scheduler.get_last_lr()[0]}

    def _seed_image_crops(self) -> None:
        """Seed torch's global generator, which robomimic's crop randomizer draws from, from
        (seed, step, rank). Only image policies draw from it. On CPU only the CPU generator is
        seeded: `torch.manual_seed` would also queue a lazy CUDA seeding call, with a formatted
        stack trace, on every step of a CUDA build without a GPU (a quarter millisecond, and a
        queue that grows for the whole run)."""
        config = self.train_config
        entropy = np.random.SeedSequence([config.seed, self.step, self.rank.index])
        seed = int(entropy.generate_state(1)[0])
        if self.device.type == "cpu":
            torch.default_generator.manual_seed(seed)
        else:
            torch.manual_seed(seed)

    def _clip_gradients(self, max_norm: float) -> float:
        """clip_grad_norm_'s numbers (the norm of the per-tensor norms; the same coefficient) in
        one foreach call for the norms and one for the rescale, without its grouping by device
        and dtype (the trainer's parameters share both), and the rescale run only when the norm
        exceeds the limit (torch always multiplies, by 1.0 when within it)."""
        grads = [p.grad for p in self._params if p.grad is not None]
        if not grads:
            return 0.0
        norm = torch.linalg.vector_norm(torch.stack(foreach_norm(grads)))
        value = float(norm)
        if value > max_norm:
            foreach_mul_(grads, max_norm / (norm + 1e-6))
        return value

    def _finite(self, loss: torch.Tensor, value: float) -> bool:
        """Whether this rank's loss `value` (and, under DDP, every rank's loss) is finite."""
        if self.rank.world == 1:
            return math.isfinite(value)
        finite = torch.isfinite(loss.detach()).float().reshape(1)
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        return bool(finite.item() > 0)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean loss over `val_batches` fixed batches of held-out episodes, live and EMA."""
        config = self.train_config
        windows = len(self.val_dataset)
        size = min(config.batch_size, windows)
        order = np.random.default_rng([config.seed, VAL_SEED_OFFSET]).permutation(windows)
        results = {}
        models = {"val_loss": self.policy}
        if self.ema is not None:
            models["val_loss_ema"] = self.ema.model
        for name, model in models.items():
            model.eval()
            total, count = 0.0, 0
            for b in range(min(config.val_batches, max(1, windows // size))):
                batch = self.val_dataset[order[b * size : (b + 1) * size]]
                noise = StepNoise(config.seed + VAL_SEED_OFFSET, b, size, device=self.device)
                with self.autocast():
                    loss, _ = model.compute_loss(batch, noise)
                total, count = total + loss.item(), count + 1
            results[name] = total / count
        return results

    def fit(self) -> TrainResult:
        config = self.train_config
        metrics = _MetricsLog(self.run, config.tensorboard) if self.rank.main else None
        bar = self._bar()
        last: dict[str, float] = {"loss": float("nan")}
        started, started_step = time.perf_counter(), self.step
        checkpoint = self.run.latest_checkpoint()
        # a stop signal waits for the step to end (one process only: DDP ranks would disagree)
        waits = stop.deferred() if self.rank.world == 1 else nullcontext()
        try:
            with waits:
                while self.step < config.steps:
                    last = self.train_step()
                    rate = (self.step - started_step) / max(time.perf_counter() - started, 1e-9)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(
                            loss=f"{last['loss']:.4f}",
                            lr=f"{last['lr']:.2e}",
                            steps_s=f"{rate:.1f}",
                        )
                    checkpoint = self._after_step(metrics, last, rate) or checkpoint
                    signal_number = stop.pending()
                    if signal_number is not None:
                        self._stop(signal_number, checkpoint, last)
        finally:
            if bar is not None:
                bar.close()
            if metrics:
                metrics.close()
        return TrainResult(
            self.run.path,
            self.step,
            last["loss"],
            self.last_val.get("val_loss"),
            self.last_val.get("val_loss_ema"),
            checkpoint,
        )

    def _after_step(self, metrics, last: dict[str, float], rate: float) -> Path | None:
        """Log, validate and checkpoint on their schedules; the checkpoint written, if any."""
        config, checkpoint = self.train_config, None
        if metrics and (self.step % config.log_every == 0 or self.step == config.steps):
            metrics.write({"step": self.step, **last, "steps_per_s": rate})
        if self.step % config.val_every == 0 or self.step == config.steps:
            if self.rank.main:
                self.last_val = self.validate()
                metrics.write({"step": self.step, **self.last_val})
        if self.step % config.checkpoint_every == 0 or self.step == config.steps:
            if self.rank.main:
                checkpoint = self.save({"loss": last["loss"], **self.last_val})
            if self.rank.world > 1:
                dist.barrier()
        return checkpoint

    def _stop(self, signal_number: int, checkpoint: Path | None, last: dict[str, float]) -> None:
        """A stop signal arrived during the step that just ended: write a last checkpoint at
        this step (unless one was just written) and raise `Stopped` saying so."""
        if checkpoint is None or checkpoint != self.run.checkpoint(self.step):
            checkpoint = self.save({"loss": last["loss"], **self.last_val})
        raise stop.Stopped(
            signal_number,
            f"a last checkpoint was written at step {self.step} ({checkpoint}); rerun with "
            "--resume to go on from there",
        )

    def _bar(self):
        if not (self.progress and self.rank.main):
            return None
        from tqdm import tqdm

        return tqdm(total=self.train_config.steps, initial=self.step, desc="train", unit="step")


class _MetricsLog:
    """metrics.jsonl (one JSON object per line), and TensorBoard scalars when asked for."""

    def __init__(self, run: RunDir, tensorboard: bool):
        run.path.mkdir(parents=True, exist_ok=True)
        self.file = run.metrics.open("a")
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise UserError("tensorboard = true needs the tensorboard package") from None
            self.writer = SummaryWriter(str(run.tensorboard))

    def write(self, record: dict[str, float]) -> None:
        with writing(
            self.file.name, "the checkpoints written so far are intact; rerun with --resume"
        ):
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()
        if self.writer is not None:
            for key, value in record.items():
                if key != "step":
                    self.writer.add_scalar(key, value, record["step"])

    def close(self) -> None:
        self.file.close()
        if self.writer is not None:
            self.writer.close()


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop lines logged after the checkpoint a run resumes from (they will be logged again)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if _logged_step(line) <= step]
    write_text_atomically(path, "".join(line + "\n" for line in kept))


def _logged_step(line: str) -> float:
    """A line's step; a line cut short (stopped or out of disk mid-write) counts as after."""
    try:
        return json.loads(line)["step"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return math.inf


def train(
    train_config: TrainConfig,
    policy_config: PolicyConfig,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train into `train_config.out`; refuses an existing run directory unless resuming, and a
    run directory another live process is training into (`FolderLock`, held by rank 0)."""
    run = Path(train_config.out)
    if not train_config.out:
        raise UserError("an output directory (--out) is needed")
    if resume and not run.exists():
        raise UserError(f"{run} does not exist; there is nothing to resume")
    if not resume and has_content(run):
        raise UserError(
            f"{run} already exists; pass --resume to continue it or choose another --out"
        )
    lock = FolderLock(run, "training run") if _rank_zero() else nullcontext()
    with lock:
        return _train(train_config, policy_config, resume, progress)


def _rank_zero() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _train(
    train_config: TrainConfig, policy_config: PolicyConfig, resume: bool, progress: bool
) -> TrainResult:
    run = RunDir(train_config.out)
    trainer = Trainer(train_config, policy_config, progress)
    if resume:
        started_for = trainer.resume()
        if started_for is not None and train_config.steps > started_for and trainer.rank.main:
            write_text_atomically(run.config, json.dumps(trainer.config_record(), indent=2))
            if progress:
                print(
                    f"{run.path}: extending from {started_for} to {train_config.steps} steps; the "
                    f"cosine lr schedule now decays to 0 at step {train_config.steps}, so the lr "
                    f"at step {trainer.step} is the new schedule's "
                    f"({trainer.scheduler.get_last_lr()[0]:.3g}), not the old one's"
                )
    elif trainer.rank.main:
        run.path.mkdir(parents=True, exist_ok=True)
        write_text_atomically(run.config, json.dumps(trainer.config_record(), indent=2))
    try:
        return trainer.fit()
    finally:
        if trainer.rank.owns_group:
            dist.destroy_process_group()
