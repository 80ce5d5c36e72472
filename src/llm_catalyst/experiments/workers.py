"""The cells of a grid, run one after another, on local worker processes, or on a Ray cluster.

Every cell runs under an OS file lock so no two workers write one directory, and a grid given again
skips or resumes its cells; docs/design.md, "Grids: cells, workers and locks".
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener
from pathlib import Path
from typing import Any, Literal

import torch
from filelock import FileLock, Timeout
from rich.console import Console
from rich.text import Text

from llm_catalyst.catalyst.config import RunConfig
from llm_catalyst.catalyst.stop import STOP_SIGNALS, StopSignals
from llm_catalyst.errors import ConfigError, LLMCatalystError
from llm_catalyst.experiments.results import CONFIG_FILE
from llm_catalyst.progress import NoProgress, PlainProgress, ProgressSink, progress_for

Status = Literal["finished", "failed", "interrupted"]

_log = logging.getLogger(__name__)
_LIBRARY_LOG = logging.getLogger("llm_catalyst")


@dataclass(frozen=True)
class Cell:
    """One run of a grid: ``name`` is its directory below the grid's output folder."""

    name: str
    config: RunConfig


@dataclass(frozen=True)
class CellOutcome:
    name: str
    status: Status
    message: str = ""
    seconds: float = 0.0


class CellLocked(ConfigError):
    """Another live process holds the cell's lock: it is running that cell right now."""


@contextmanager
def cell_lock(directory: Path) -> Iterator[None]:
    """Hold the lock of the cell whose run directory is ``directory``.

    An OS lock (``flock``, ``LockFileEx`` on Windows, through ``filelock``) and not a pid file:
    docs/design.md, "Grids: cells, workers and locks". The holder is recorded beside the lock
    file, not in it, because Windows forbids reading a locked byte range.
    """
    path = directory.with_name(directory.name + ".lock")
    holder_path = directory.with_name(directory.name + ".lock.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        lock = FileLock(path, timeout=0)
        try:
            lock.acquire()
            break
        except Timeout:
            # The holder finished between filelock's open and its try and removed the file.
            if path.exists():
                raise CellLocked(
                    f"{directory} is being run by {_read_holder(holder_path)} (lock {path}); wait "
                    "for that process to finish, or stop it - its lock goes away with it"
                ) from None
    try:
        record = {"host": socket.gethostname(), "pid": os.getpid()}
        record["since"] = datetime.now(UTC).isoformat(timespec="seconds")
        holder_path.write_text(json.dumps(record))
        yield
    finally:
        holder_path.unlink(missing_ok=True)
        # Removed while still held, so a waiter that opened this file finds it gone (filelock
        # checks) and never holds a lock another worker can no longer see; Windows cannot remove
        # an open file, and its filelock removes it on release instead.
        with suppress(OSError):
            path.unlink()
        lock.release()


def _read_holder(holder_path: Path) -> str:
    try:
        record = json.loads(holder_path.read_text())
        return f"process {record['pid']} on {record['host']} (since {record['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def run_cell(
    cell: Cell,
    output: Path,
    console: Console | None = None,
    progress: ProgressSink | None = None,
) -> CellOutcome:
    """Run, resume or skip one cell in this process, under its lock; its progress goes to
    ``progress`` (default: none). The cells of one output folder share their zero-shot
    scores in ``OUTPUT/.zero-shot/`` (catalyst/zero_shot.py).

    Errors a user can cause (and a held lock) come back as a failed outcome with the message;
    Ctrl-C comes back as ``interrupted`` after the run wrote its checkpoint.
    """
    from llm_catalyst.catalyst.runner import resume, run
    from llm_catalyst.catalyst.stop import RunInterrupted
    from llm_catalyst.catalyst.zero_shot import ZeroShotCache

    console = console or Console(quiet=True)
    directory = Path(output) / cell.name
    start = time.perf_counter()
    try:
        with cell_lock(directory):
            if directory.exists():
                check_same_config(directory, cell.config)
            if (directory / "results.json").is_file():
                return CellOutcome(cell.name, "finished", "finished earlier")
            progress = progress or NoProgress()
            shared = ZeroShotCache(Path(output))
            if directory.exists():
                result = resume(directory, console, progress, shared)
            else:
                result = run(cell.config, console, cell.name, progress, shared)
    except RunInterrupted as stop:
        return CellOutcome(cell.name, "interrupted", str(stop), time.perf_counter() - start)
    except LLMCatalystError as error:
        return CellOutcome(cell.name, "failed", str(error), time.perf_counter() - start)
    results = result.results
    message = f"{results.scored_split} accuracy {results.test.accuracy:.4f} (n={results.test.n})"
    return CellOutcome(cell.name, "finished", message, time.perf_counter() - start)


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flat(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def check_same_config(directory: Path, wanted: RunConfig) -> None:
    """Refuse a cell directory written with other settings than the cell's. Settings that
    cannot change a cell's result are not compared: ``output_dir`` (the grid's folder, which a
    user may move or copy, e.g. from a repository's records into ``runs/``), ``tracking``
    (where a run is reported), ``llm`` for a method that never calls an LLM and ``race`` for
    one that does not race, so a new default (or --llm file, or tracking turned on) leaves the
    finished cells standing."""
    from llm_catalyst.catalyst.config import load_run_config
    from llm_catalyst.catalyst.methods import get_method

    recorded = _flat(load_run_config(directory / CONFIG_FILE).model_dump(mode="json"))
    requested = _flat(wanted.model_dump(mode="json"))
    method = get_method(wanted.method)
    unused = ("output_dir", "tracking.")
    unused += () if method.needs_llm else ("llm.",)
    unused += () if method.starts is not None else ("race.",)
    differences = [
        f"{key}: {recorded.get(key)!r} there, {requested.get(key)!r} now"
        for key in sorted(recorded.keys() | requested.keys())
        if recorded.get(key) != requested.get(key) and not key.startswith(unused)
    ]
    if differences:
        raise ConfigError(
            f"{directory} was run with other settings ({'; '.join(differences)}); give the grid "
            "another --output, or delete that directory to run the cell with these settings"
        )


def run_cells(
    cells: Sequence[Cell],
    output: Path,
    workers: int = 1,
    ray_address: str | None = None,
    console: Console | None = None,
) -> list[CellOutcome]:
    """Run ``cells`` (unique names) below ``output``; outcomes in the order cells finished.

    One worker runs them here, in order, and stops at the first interrupted cell; ``workers``
    and ``ray_address`` exclude each other. Each cell shows its progress as ``cell i/n NAME``:
    one worker on a terminal as a live bar, otherwise (several workers share stderr) as log
    lines.
    """
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if workers > 1 and ray_address is not None:
        raise ConfigError("give --workers or --ray, not both: on Ray the cluster's CPUs decide")
    names = [cell.name for cell in cells]
    if len(set(names)) != len(names):
        raise ConfigError(f"a grid names each cell once; repeated: {sorted(_repeated(names))}")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(
            "compare was started by a multi-process launcher (accelerate launch / torchrun); a "
            "grid runs its cells in separate processes itself (--workers, --ray): start it "
            "plainly, or launch a single `llm-catalyst run` with accelerate"
        )
    console = console or Console(stderr=True, quiet=True)
    if ray_address is not None:
        return _on_ray(cells, output, ray_address, console)
    if workers == 1:
        outcomes = []
        with StopSignals(GRID_STOPPING) as stop:  # between cells; a running cell has its own
            for number, cell in enumerate(cells, 1):
                if stop.requested:
                    outcomes.append(CellOutcome(cell.name, "interrupted", NOT_STARTED))
                else:
                    console.print(Text(cell.name, style="bold"))
                    progress = progress_for(console, _label(cell, number, len(cells)))
                    outcomes.append(run_cell(cell, output, console, progress))
                _report(console, outcomes[-1], len(outcomes), len(cells))
                if outcomes[-1].status == "interrupted":
                    break
        return outcomes
    return _on_local_workers(cells, output, workers, console)


def _label(cell: Cell, number: int, total: int) -> str:
    return f"cell {number}/{total} {cell.name}"


GRID_STOPPING = (
    "running cells stop (at their next step with a checkpoint, or at once inside a round) and "
    "no other cell starts; a second Ctrl-C aborts"
)
NOT_STARTED = "not started: the grid was stopped"

# In a worker process: set by the grid when it is asked to stop, so a cell already queued to
# this worker (the pool hands out one more than it runs, and it cannot be taken back) never
# starts; and held while a cell runs, so a worker whose grid died ends after its cell stopped.
_grid_stopped: Any = None
_cell_running = threading.Lock()


def _worker_cell(cell: Cell, output: Path, label: str) -> CellOutcome:
    """A cell in a worker process: its progress as log lines on the worker's stderr (shared
    with the other workers, so no live bar), its run's notes left out (``_send_library_log``),
    its warnings relayed to the grid. A stop that comes before the cell's run handles it holds
    in the run (nested ``StopSignals``)."""
    with StopSignals("the cell stops before it starts") as stop, _cell_running:
        if stop.requested or (_grid_stopped is not None and _grid_stopped.is_set()):
            return CellOutcome(cell.name, "interrupted", NOT_STARTED)
        return run_cell(cell, output, progress=PlainProgress(Console(stderr=True), label))


def _repeated(names: Sequence[str]) -> set[str]:
    return {name for name in names if names.count(name) > 1}


def _report(console: Console, outcome: CellOutcome, done: int, total: int) -> None:
    colour = {"finished": "green", "failed": "red", "interrupted": "yellow"}[outcome.status]
    console.print(
        Text.assemble(
            f"[{done}/{total}] {outcome.name}: ",
            (outcome.status, colour),
            f" after {outcome.seconds:.1f} s" + (f": {outcome.message}" if outcome.message else ""),
        )
    )


def _worker_setup(threads: int, stopped: Any, records: Any, level: int) -> None:
    """Each worker: its share of the threads; the library's log records sent to the grid's
    process; Ctrl-C and SIGTERM ignored while idle (a running cell handles them: it stops with
    a checkpoint); the grid's stop event, passed on to the running cell; and the end of the
    worker when the grid's process dies."""
    global _grid_stopped
    _share_threads(threads)
    _send_library_log(records, level)
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    _grid_stopped = stopped
    main = threading.get_ident()  # the initializer runs in the worker's main thread
    threading.Thread(target=_pass_stop_on, args=(stopped, main), daemon=True).start()
    threading.Thread(target=_end_with_grid, args=(stopped,), daemon=True).start()


def _share_threads(threads: int) -> None:
    """A worker's share of the cores, for torch and for the llama.cpp server its cells start
    (where ``llm.n_threads`` is unset): llama.cpp's own choice, every core, would compete with
    the other workers' cells and make its threads wait on one another."""
    from llm_catalyst.llm.llama_cpp import use_thread_budget  # gguf: in workers only

    torch.set_num_threads(threads)
    use_thread_budget(threads)


def _send_library_log(records: Any, level: int) -> None:
    """In a worker: the library's records at ``level`` (the grid's process's) and up, onto the
    queue the grid relays (``_relayed_library_log``). A spawned worker inherits no handler, so
    without this its warnings would go nowhere."""
    _LIBRARY_LOG.setLevel(level)
    _LIBRARY_LOG.addHandler(QueueHandler(records))
    # A run's own notes (its directory, each round's decision) from several workers at once
    # would interleave without naming their cell; the cell's progress lines carry its label,
    # and its records (events.jsonl) say the rest. Warnings still come through.
    logging.getLogger("llm_catalyst.catalyst").setLevel(max(level, logging.WARNING))


class _Relay(logging.Handler):
    """A record from a worker, handled here by the logger that made it (and its parents)."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger(record.name).handle(record)


@contextmanager
def _relayed_library_log(records: Any) -> Iterator[None]:
    """While the grid runs, the workers' records are handled in this process, so the command
    line (or a host application) shows them where it shows its own."""
    listener = QueueListener(records, _Relay())
    listener.start()
    try:
        yield
    finally:
        listener.stop()


def _pass_stop_on(stopped: Any, main: int) -> None:
    """The grid was asked to stop (it may be the only process that was: ``kill PID``): so is
    the running cell, by SIGTERM to the worker's ``main`` thread, which interrupts whatever it
    waits on (an LLM call) and never aborts the cell where a Ctrl-C reached it too."""
    stopped.wait()
    signal.pthread_kill(main, signal.SIGTERM)


def _end_with_grid(stopped: Any) -> None:
    """The grid's process died (even by SIGKILL, which it cannot catch), so nothing would ever
    collect this worker: stop the running cell (within seconds, with its checkpoint) and end
    the worker, at once when idle. The parent's sentinel is multiprocessing's own pipe, which
    the kernel closes when the parent dies, however it dies."""
    parent = multiprocessing.parent_process()
    assert parent is not None, "a worker process has the grid's process as its parent"
    multiprocessing.connection.wait([parent.sentinel])
    stopped.set()  # no cell starts (_worker_cell) and the running one stops (_pass_stop_on)
    with _cell_running:
        os._exit(1)


def _on_local_workers(
    cells: Sequence[Cell], output: Path, workers: int, console: Console
) -> list[CellOutcome]:
    threads = max(1, torch.get_num_threads() // workers)
    _log.info(
        "%d cell(s) on %d worker process(es), %d thread(s) each", len(cells), workers, threads
    )
    outcomes: list[CellOutcome] = []
    context = multiprocessing.get_context("spawn")
    stopped, records = context.Event(), context.Queue()
    setup = (threads, stopped, records, _LIBRARY_LOG.getEffectiveLevel())
    with (
        _relayed_library_log(records),
        StopSignals(GRID_STOPPING, on_request=stopped.set) as stop,
        ProcessPoolExecutor(workers, context, _worker_setup, setup) as pool,
    ):
        futures = [
            pool.submit(_worker_cell, cell, output, _label(cell, number, len(cells)))
            for number, cell in enumerate(cells, 1)
        ]
        for future in as_completed(futures):
            if future.cancelled():
                continue
            outcomes.append(future.result())
            _report(console, outcomes[-1], len(outcomes), len(cells))
            if stop.requested:  # those not handed to a worker yet are dropped
                for waiting in futures:
                    waiting.cancel()
    return outcomes


def _on_ray(
    cells: Sequence[Cell], output: Path, address: str, console: Console
) -> list[CellOutcome]:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--ray needs the Ray package, which is not installed\n  fix: pip install "
            "'llm-catalyst[ray]' (on this machine and on every node of the cluster)"
        ) from None
    ray.init(address=address, ignore_reinit_error=True)
    task = ray.remote(_ray_cell)
    pending: list[Any] = [
        task.options(
            num_cpus=1,
            num_gpus=int(cell.config.backbone.device.startswith("cuda")),
            runtime_env={"env_vars": _environment_for(cell)},
        ).remote(cell, str(output), _label(cell, number, len(cells)), os.getcwd())
        for number, cell in enumerate(cells, 1)
    ]
    _log.info("%d cell(s) sent to the Ray cluster at %s", len(cells), address)
    outcomes: list[CellOutcome] = []
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        outcomes.append(ray.get(done[0]))
        _report(console, outcomes[-1], len(outcomes), len(cells))
    return outcomes


# What a cell reads from the environment besides its config: the data folder and the cache
# (data/paths.py, userdirs.py) and the hub's settings (offline, cache, token).
FORWARDED_PREFIXES = ("LLM_CATALYST_", "HF_", "TRANSFORMERS_")


def _environment_for(cell: Cell) -> dict[str, str]:
    """The command's variables a cell reads, and the one its LLM config names for the API key:
    a Ray worker has the environment of the process that started the cluster's node, so
    without them a cell would read other data, write another cache or find no key."""
    names = [name for name in os.environ if name.startswith(FORWARDED_PREFIXES)]
    if cell.config.llm.api_key_env:
        names.append(cell.config.llm.api_key_env)
    return {name: os.environ[name] for name in names if name in os.environ}


def _ray_cell(cell: Cell, output: str, label: str, directory: str) -> CellOutcome:
    """A cell as a Ray task: one thread (torch's and llama.cpp's), matching the one CPU it
    asked for; Ray forwards its progress lines to the driver. It runs in the command's
    working ``directory``, as a local worker does: a Ray worker starts wherever its node was
    started, where the grid's relative paths (its --output, a data folder, the ../shared/data
    convention) would name other folders."""
    try:
        os.chdir(directory)
    except OSError as error:
        return CellOutcome(
            cell.name,
            "failed",
            f"the grid's working folder {directory} is not on Ray node {socket.gethostname()} "
            f"({error.strerror}): start compare in a folder every node sees",
        )
    _share_threads(1)
    return _worker_cell(cell, Path(output), label)
