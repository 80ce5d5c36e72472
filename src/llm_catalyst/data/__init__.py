"""Task data: the task schema, built-in and custom task specs, readers and k-shot sampling."""

from llm_catalyst.data.config import DataConfig, load_data, load_splits
from llm_catalyst.data.paths import DATA_ENV_VAR, resolve_data_dir
from llm_catalyst.data.readers import load_task, load_text_task, task_data_from_hub
from llm_catalyst.data.registry import TASK_NAMES, TaskInfo, get_task, list_tasks
from llm_catalyst.data.sampling import FewShotSplits, sample_splits
from llm_catalyst.data.specs import ImageTaskSpec, TextTaskSpec
from llm_catalyst.data.tasks import Example, Task, TaskData

__all__ = [
    "DATA_ENV_VAR",
    "TASK_NAMES",
    "DataConfig",
    "Example",
    "FewShotSplits",
    "ImageTaskSpec",
    "Task",
    "TaskData",
    "TaskInfo",
    "TextTaskSpec",
    "get_task",
    "list_tasks",
    "load_data",
    "load_splits",
    "load_task",
    "load_text_task",
    "resolve_data_dir",
    "sample_splits",
    "task_data_from_hub",
]
