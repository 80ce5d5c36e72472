"""Task data: built-in tasks, readers for their files and the hub, custom tasks, sampling.

Public API (details in each module's docstring):
    Example, Task, TaskData                        the schema (tasks.py)
    TASK_NAMES, get_task, list_tasks, TaskInfo     built-in tasks (registry.py)
    load_task, load_custom_task, task_data_from_hub
                                                   reading data (readers.py)
    resolve_data_dir, DATA_ENV_VAR                 where local data lives (paths.py)
    sample_splits, FewShotSplits                   k-shot train/dev, untouched test (sampling.py)
    DataConfig, CustomTaskSpec, load_data, load_splits
                                                   configuration (config.py)
"""

from llm_catalyst.data.config import CustomTaskSpec, DataConfig, load_data, load_splits
from llm_catalyst.data.paths import DATA_ENV_VAR, resolve_data_dir
from llm_catalyst.data.readers import load_custom_task, load_task, task_data_from_hub
from llm_catalyst.data.registry import TASK_NAMES, TaskInfo, get_task, list_tasks
from llm_catalyst.data.sampling import FewShotSplits, sample_splits
from llm_catalyst.data.tasks import Example, Task, TaskData

__all__ = [
    "DATA_ENV_VAR",
    "TASK_NAMES",
    "CustomTaskSpec",
    "DataConfig",
    "Example",
    "FewShotSplits",
    "Task",
    "TaskData",
    "TaskInfo",
    "get_task",
    "list_tasks",
    "load_custom_task",
    "load_data",
    "load_splits",
    "load_task",
    "resolve_data_dir",
    "sample_splits",
    "task_data_from_hub",
]
