"""The seam between invoke tasks and the elkbuild library.

`elk_task` is `invoke.task` plus three promises made to every user:
- an ElkbuildError becomes ONE line on stderr with its hint, and exit code 1
  (2 for usage errors);
- any other exception is reported as an internal error, still in one line;
- `--verbose` shows the traceback and every command run, nothing else does.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
import traceback
from typing import Any, Callable

from invoke import task
from invoke.exceptions import Exit

from elkbuild.errors import ElkbuildError, ValidationFailed
from elkbuild.reporting import PROG



def _configure_logging(verbose: bool) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    root = logging.getLogger("elkbuild")
    root.setLevel(level)
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
    for handler in root.handlers:
        handler.setLevel(level)


def report(error: ElkbuildError) -> None:
    """Print an error the way every task does: one line (plus one per problem)."""
    print(f"{PROG}: error: {error.one_line()}", file=sys.stderr)
    if isinstance(error, ValidationFailed):
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)


def _verbose_requested(kwargs: dict[str, Any]) -> bool:
    return bool(kwargs.get("verbose")) or os.environ.get("ELKBUILD_VERBOSE", "") not in ("", "0")


def elk_task(*targs: Any, **tkwargs: Any) -> Callable:
    """Decorator: `@elk_task(help={...})` over `def name(c, ..., verbose=False)`.

    The body may declare `verbose` itself; if it does not, the flag is added.
    """

    def decorate(body: Callable) -> Any:
        sig = inspect.signature(body)
        takes_verbose = "verbose" in sig.parameters
        if not takes_verbose:
            params = list(sig.parameters.values())
            params.append(inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY
                                            if any(p.kind == p.KEYWORD_ONLY for p in params)
                                            else inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                            default=False))
            sig = sig.replace(parameters=params)

        @functools.wraps(body)
        def wrapper(c: Any, *args: Any, **kwargs: Any) -> Any:
            verbose = _verbose_requested(kwargs)
            if not takes_verbose:
                kwargs.pop("verbose", None)
            _configure_logging(verbose)
            try:
                return body(c, *args, **kwargs)
            except Exit:
                raise
            except ElkbuildError as error:
                if verbose:
                    traceback.print_exc()
                report(error)
                raise Exit(code=error.exit_code) from None
            except BrokenPipeError:  # output piped into `head` and the like
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                raise Exit(code=0) from None
            except KeyboardInterrupt:
                print(f"{PROG}: interrupted", file=sys.stderr)
                raise Exit(code=130) from None
            except Exception as error:  # a bug in elkbuild, still no traceback by default
                if verbose:
                    traceback.print_exc()
                text = " ".join(str(error).split()) or type(error).__name__
                print(f"{PROG}: internal error: {type(error).__name__}: {text} "
                      f"(hint: run again with --verbose and report it)", file=sys.stderr)
                raise Exit(code=1) from None

        wrapper.__signature__ = sig  # type: ignore[attr-defined]
        helps = dict(tkwargs.pop("help", {}) or {})
        helps.setdefault("verbose", "show every command run and full tracebacks")
        return task(*targs, help=helps, **tkwargs)(wrapper)

    return decorate
