"""The task specs: one module per task, each holding its :class:`~models.tasks.TaskSpec` and label.

Every module of this package defines ``SPEC``; importing the package registers them all
(:func:`models.tasks.register`), so adding a task is adding one module here. The registry imports
this package lazily, on first use (:func:`models.tasks.task_specs`); nothing else needs to.
"""

from __future__ import annotations

import importlib
import pkgutil

from models.tasks import register

__all__: list[str] = []

for _module in pkgutil.iter_modules(__path__):
    register(importlib.import_module(f"{__name__}.{_module.name}").SPEC)
