"""`dopr-robot data info | validate | convert`: look at, check and convert demonstration files.

A flag that does not fit the source or the output format is a `UserError`; a file that cannot be
used as asked is a `DataError` (raised here or by `datasets`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..errors import DataError, UserError


def add_parser(commands) -> None:
    data = commands.add_parser("data", help="inspect, validate and convert demonstration stores")
    actions = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    info = actions.add_parser(
        "info", help="episodes, steps, keys (shape, dtype, range), provenance"
    )
    info.add_argument(
        "path", type=Path, help="a zarr store (directory or .zarr.zip) or a LeRobot dataset folder"
    )
    info.set_defaults(func=_info)

    validate = actions.add_parser(
        "validate", help="check a store or a LeRobot dataset; one line per problem"
    )
    validate.add_argument(
        "path", type=Path, help="a zarr store (directory or .zarr.zip) or a LeRobot dataset folder"
    )
    validate.add_argument("--keys", help="LeRobot features to check, comma-separated")
    validate.set_defaults(func=_validate)
    _add_convert(actions)


def _add_convert(actions) -> None:
    convert = actions.add_parser(
        "convert",
        help="robomimic HDF5, a LeRobot dataset or zarr (format 2/3) -> a new zarr store; "
        "a zarr store -> a LeRobot v3.0 dataset with --to lerobot",
    )
    convert.add_argument(
        "source", type=Path, help="robomimic .hdf5, a LeRobot dataset folder or a zarr store"
    )
    convert.add_argument(
        "target", type=Path, help="output store (directory, or .zarr.zip), or dataset folder"
    )
    convert.add_argument(
        "--to", choices=("zarr", "lerobot"), default="zarr", help="output format (default zarr)"
    )
    convert.add_argument(
        "--keys",
        help="LeRobot features to convert, comma-separated (default: observation.*, action)",
    )
    convert.add_argument(
        "--fps",
        type=float,
        help="--to lerobot: frames per second, a whole number (default: the store's, or 10)",
    )
    convert.add_argument(
        "--keep-executed-action",
        action="store_true",
        help="--to lerobot: also export the noisy executed action, as `executed_action` "
        "(default: left out, since LeRobot reads every `action*` feature as a policy output)",
    )
    convert.add_argument(
        "--obs-keys", help="robomimic obs keys, comma-separated (default: all low-dim keys)"
    )
    convert.add_argument("--filter", help="robomimic mask name, e.g. train: convert only those")
    convert.add_argument(
        "--action-key",
        default="actions",
        help="robomimic: the demo dataset stored as `action` (default actions; e.g. actions_abs)",
    )
    convert.add_argument("--format", type=int, choices=(2, 3), default=3, help="zarr format")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing output")
    convert.set_defaults(func=_convert)


def _open(path: Path):
    from ..datasets import ReplayBuffer

    if path.is_file() and _is_hdf5(path):
        raise DataError(f"{path} is an HDF5 file; convert it first: dopr-robot data convert")
    return ReplayBuffer.open(path)


def _is_hdf5(path: Path) -> bool:
    import h5py

    return h5py.is_hdf5(path)


def _lerobot_info(path: Path) -> int:
    from ..datasets.lerobot import LeRobotDataset, store_key

    dataset = LeRobotDataset(path)
    frames = sum(int(e["length"]) for e in dataset.episodes)
    print(f"{path}: LeRobot {dataset.version} dataset, {dataset.fps:g} fps")
    print(f"episodes: {len(dataset.episodes)}   frames: {frames}   tasks: {len(dataset.tasks)}")
    print("features (-> store key when converted):")
    for name, feature in dataset.features.items():
        target = store_key(name) if name in dataset.default_keys() else "(not converted)"
        shape = tuple(feature.get("shape", ()))
        print(f"  {name:<32} {feature.get('dtype', '?'):<8} {str(shape):<16} -> {target}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from ..datasets import is_lerobot_dataset

    if is_lerobot_dataset(args.path):
        return _lerobot_info(args.path)
    buffer = _open(args.path)
    lengths = buffer.episode_lengths
    print(f"{buffer.path}: zarr format {buffer.zarr_format}")
    attrs = buffer.attrs
    source = attrs.get("source_format") or (
        "dopr-robot collect" if "collect" in attrs else "zarr replay buffer"
    )
    print(f"source format: {source}" + (f" ({attrs['source']})" if "source" in attrs else ""))
    if isinstance(attrs.get("key_mapping"), dict):
        print("key mapping (store key <- source):")
        for key, origin in attrs["key_mapping"].items():
            print(f"  {key:<24} <- {origin}")
    print(f"episodes: {buffer.n_episodes}   steps: {buffer.n_steps}")
    if len(lengths):
        print(
            f"episode length: min {lengths.min()}, mean {lengths.mean():.1f}, max {lengths.max()}"
        )
    print("keys:")
    for key, (shape, dtype) in buffer.keys.items():
        values = buffer.load([key])[key]
        low, high = (values.min(), values.max()) if values.size else (np.nan, np.nan)
        print(f"  {key:<24} shape {str(shape):<16} {str(dtype):<8} min {low:.4g}  max {high:.4g}")
    extra = max((a.shape[0] for a in buffer._arrays().values()), default=0) - buffer.n_steps
    if extra > 0:
        print(f"uncommitted rows past the last episode (an interrupted append): {extra}, ignored")
    if buffer.attrs:
        print("provenance:")
        for key, value in buffer.attrs.items():
            print(f"  {key}: {_short(value)}")
    return 0


def _short(value, items: int = 8) -> str:
    """An attribute on one line; a long list (e.g. one seed per episode) shows its ends."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) > 2 * items:
        head = json.dumps(value[:items])[:-1]
        tail = json.dumps(value[-items:])[1:]
        return f"{head}, ... {tail}  ({len(value)} items)"
    return json.dumps(value)


def _validate(args: argparse.Namespace) -> int:
    from ..datasets import is_lerobot_dataset, validate_lerobot, validate_store

    if is_lerobot_dataset(args.path):
        found = validate_lerobot(args.path, _keys(args.keys))
        for problem in found:
            print(f"dopr-robot: error: {problem}", flush=True)
        if found:
            return 2
        print(f"{args.path}: valid LeRobot dataset (every episode's rows and frames read)")
        return 0
    if args.keys:
        raise UserError("--keys applies to LeRobot datasets only")
    buffer = _open(args.path)
    found = validate_store(buffer)
    if found:
        for problem in found:
            print(f"dopr-robot: error: {problem}", flush=True)
        return 2
    print(f"{buffer.path}: valid ({buffer.n_episodes} episodes, {buffer.n_steps} steps)")
    return 0


def _keys(text: str | None) -> list[str] | None:
    return [k.strip() for k in text.split(",") if k.strip()] if text else None


def _convert(args: argparse.Namespace) -> int:
    """Check that the flags fit the source and the output format, then convert."""
    from ..datasets import is_lerobot_dataset

    lerobot_source = is_lerobot_dataset(args.source)
    robomimic_source = args.source.is_file() and _is_hdf5(args.source)
    if (args.obs_keys or args.filter or args.action_key != "actions") and not robomimic_source:
        raise UserError("--obs-keys, --filter and --action-key apply to robomimic HDF5 input only")
    if args.keys and not lerobot_source:
        raise UserError("--keys applies to LeRobot dataset input only")
    if (args.fps is not None or args.keep_executed_action) and args.to != "lerobot":
        raise UserError("--fps and --keep-executed-action apply to --to lerobot only")
    if args.to == "lerobot":
        if lerobot_source or robomimic_source:
            raise UserError("--to lerobot converts a zarr store; convert the source to zarr first")
        return _export_lerobot(args)
    kind = "lerobot" if lerobot_source else "robomimic" if robomimic_source else "zarr"
    return _convert_to_zarr(args, kind)


def _export_lerobot(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..datasets import write_lerobot
    from ..datasets.lerobot import VIDEO_CODEC, VIDEO_CRF

    def frames(items):
        return tqdm(items, desc="encoding video", unit="frame", leave=False)

    export = write_lerobot(
        args.source, args.target, fps=args.fps, overwrite=args.overwrite,
        keep_executed_action=args.keep_executed_action, progress=frames,
    )  # fmt: skip
    print(
        f"wrote {args.target}: LeRobot v3.0 dataset, {export.fps} fps "
        f"(video: H.264, {VIDEO_CODEC} yuv420p crf {VIDEO_CRF})"
    )
    if export.left_out:
        print(f"left out: {', '.join(export.left_out)} (LeRobot would read them as actions; "
              "--keep-executed-action exports action_executed as executed_action)")  # fmt: skip
    return 0


def _convert_to_zarr(args: argparse.Namespace, kind: str) -> int:
    """`kind`: the source's format, lerobot, robomimic or zarr."""
    from tqdm import tqdm

    from ..datasets import ReplayBuffer, convert_lerobot, convert_robomimic, convert_zarr

    def progress(items):
        return tqdm(items, desc=f"converting {args.source.name}", unit="episode", leave=False)

    common = dict(zarr_format=args.format, overwrite=args.overwrite, progress=progress)
    if kind == "lerobot":
        convert_lerobot(args.source, args.target, keys=_keys(args.keys), **common)
    elif kind == "robomimic":
        obs_keys = args.obs_keys.split(",") if args.obs_keys else None
        convert_robomimic(
            args.source,
            args.target,
            obs_keys=obs_keys,
            filter_key=args.filter,
            action_key=args.action_key,
            **common,
        )
    else:
        convert_zarr(args.source, args.target, **common)
    out = ReplayBuffer.open(args.target)
    keys = ", ".join(out.keys)
    print(f"wrote {args.target}: {out.n_episodes} episodes, {out.n_steps} steps, keys {keys}")
    return 0
