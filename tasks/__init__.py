"""elkbuild's invoke tasks: a thin shell over the `elkbuild` package.

One module per area; every task sits at the top level (`invoke deploy`, not
`invoke deploy.deploy`). Run `invoke --list` for the tasks, `invoke --help TASK`
for a task's flags.
"""

from __future__ import annotations

from invoke import Collection, Task

from tasks import board, build, config, containers, demo, deploy, deps, monitor, plugin, sushi

AREAS = (config, sushi, containers, deps, plugin, build, board, deploy, monitor, demo)


def _collection() -> Collection:
    ns = Collection()
    for area in AREAS:
        for value in vars(area).values():
            if isinstance(value, Task) and value.__module__ == area.__name__:
                ns.add_task(value)
    return ns


ns = _collection()
