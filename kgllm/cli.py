"""The ``kgllm`` command: one subcommand per stage, plus ``run`` for whole pipelines.

Each stage package contributes its subcommands through a light ``cli`` module listed in
``_CLI_MODULES`` with a ``register(cli: Commands)`` function; packages not built yet are absent.
Handlers import their heavy dependencies inside the handler, so ``kgllm --help`` stays fast.

Errors: a :class:`~kgllm.errors.KgllmError` is printed as one line ``kgllm: error: ...`` with its exit
code (2 for usage/input errors, 1 otherwise); ``-v`` also prints the traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import json
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path

import yaml

from . import __version__, engine
from .commands import Commands, Parser, add_engine_args, config_keys
from .errors import KgllmError, Terminated
from .log import setup_logging
from .pipeline import load_pipeline
from .registry import get_stage, list_stages

_CLI_MODULES = (
    "kgllm.pull.cli",
    "kgllm.validate.cli",
    "kgllm.corpus.cli",
    "kgllm.index.cli",
    "kgllm.train.cli",
    "kgllm.ask.cli",
    "kgllm.eval.cli",
    "kgllm.feedback.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="kgllm", description="Turn knowledge graphs into grounded language models.",
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     epilog="Run 'kgllm COMMAND --help' for a command's options.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging; tracebacks on errors")
    parser.add_argument("-q", "--quiet", action="store_true", default=False,
                        help="only warnings and errors; no progress bars (KGLLM_PROGRESS=0 also hides the bars)")
    parser.add_argument("--version", action="version", version=f"kgllm {__version__}")
    cmds = Commands(parser)
    _register_builtin(cmds)
    for modname in _CLI_MODULES:
        if importlib.util.find_spec(modname.rsplit(".", 1)[0]) is None:
            continue
        if importlib.util.find_spec(modname) is None:
            continue
        importlib.import_module(modname).register(cmds)
    return parser


def _register_builtin(cmds: Commands) -> None:
    p = cmds.command("run", "run a pipeline YAML: each stage in order, skipping up-to-date ones", _cmd_run,
                     description="Run a pipeline YAML: each stage in order, skipping up-to-date ones.\n\n"
                                 "The whole pipeline is checked before any step runs. The exit code is the worst of\n"
                                 "its steps: 1 when a step's artifact records problems (they are listed in the\n"
                                 "summary), or the error's code when a step fails.\n"
                                 "Example:\n  kgllm run examples/quickstart.yaml --dry-run")
    p.add_argument("pipeline", type=Path, help="pipeline YAML (see examples/)")
    p.add_argument("--force", action="append", default=[], metavar="STEP",
                   help="rerun this step even if up to date ('all' for every step); repeatable")
    p.add_argument("--only", action="append", default=[], metavar="STEP", help="run only this step; repeatable")
    p.add_argument("--dry-run", action="store_true",
                   help="check the whole pipeline and print each step's output, status and config")
    add_engine_args(p)
    p = cmds.command("stages", "list the pipeline stages and their config keys", _cmd_stages,
                     description="List the pipeline stages, or one stage's config keys with types and defaults.\n"
                                 "Example:\n  kgllm stages validate")
    p.add_argument("name", nargs="?", help="a stage name (e.g. validate, pull.file): show its keys in detail")


def _cmd_run(args: argparse.Namespace) -> int:
    pipe = load_pipeline(args.pipeline)
    eng = pipe.engine(address=args.ray_address, mode=args.engine)
    if args.dry_run:
        print(f"engine: heavy steps run {engine.describe(eng)}")
        for p in pipe.plan(force=args.force, only=args.only):
            print(f"{p.step.id} ({p.stage.name}): {p.status} -> {p.out}")
            if p.inputs:
                print(f"  inputs: {', '.join(map(str, p.inputs))}")
            cfg = json.loads(json.dumps(dataclasses.asdict(p.config), default=str))
            print("  config:\n" + "\n".join("    " + line for line in
                                             yaml.safe_dump(cfg, sort_keys=False).rstrip().splitlines()))
        return 0
    results = []
    try:
        pipe.run(force=args.force, only=args.only, on_step=results.append, engine=eng)
    finally:
        _print_run_summary(results)
    return 1 if any(r.problems for r in results) else 0


def _print_run_summary(results) -> None:
    if not results:
        return
    print("\nArtifacts:")
    for r in results:
        counts = ", ".join(f"{k}={v}" for k, v in r.counts.items() if not isinstance(v, (dict, list)))
        print(f"  {r.id:<12} {r.stage:<14} {r.status:<8} {r.out}  ({counts})")
    problems = [(r, p) for r in results for p in r.problems]
    if problems:
        print("\nProblems:")
        for r, p in problems:
            print(f"  {r.id}: {p}")
            print(f"kgllm: problem: step {r.id}: {p}", file=sys.stderr)


def _cmd_stages(args: argparse.Namespace) -> int:
    if args.name:
        st = get_stage(args.name)
        print(f"{st.name} -> {st.kind} artifact: {st.help}")
        for name, type_, default in config_keys(st.config):
            print(f"  {name:<34} {type_:<26} default: {default}")
        return 0
    for st in list_stages():
        keys = ", ".join(f.name for f in dataclasses.fields(st.config))
        print(f"{st.name:<16} -> {st.kind:<10} {st.help}\n{'':<16}    keys: {keys}")
    print("\nRun 'kgllm stages NAME' for a stage's keys with their types and defaults.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = sum(1 for a in argv if a in ("-v", "--verbose")) + sum(
        a.count("v") for a in argv if a.startswith("-v") and set(a[1:]) == {"v"} and len(a) > 2)
    quiet = any(a in ("-q", "--quiet") for a in argv)
    setup_logging(verbose, quiet=quiet)
    previous = _raise_on_sigterm()
    try:
        parser = build_parser()
        if not argv:
            parser.print_help()
            return 2
        args = parser.parse_args(argv)
        if not hasattr(args, "func"):
            parser.print_help()
            return 2
        rc = args.func(args)
        return int(rc or 0)
    except KgllmError as e:
        if verbose:
            traceback.print_exc()
        print(f"kgllm: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM as Terminated: the with-blocks have cleaned up
        print("kgllm: terminated" if isinstance(e, Terminated) else "kgllm: interrupted", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(e, Terminated) else signal.SIGINT)
    except BrokenPipeError:  # `kgllm ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0
    except Exception as e:  # an unexpected failure: one line unless -v
        if verbose:
            raise
        print(f"kgllm: error: {type(e).__name__}: {e} (rerun with -v for the traceback)", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_on_sigterm():
    """Make SIGTERM raise :class:`Terminated` in the main thread (Python's default just dies, leaving temp
    directories and worker processes); returns the handler it replaced, None where none can be set."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def terminated(signum, frame):
        raise Terminated()

    return signal.signal(signal.SIGTERM, terminated)


if __name__ == "__main__":
    raise SystemExit(main())
