"""How a one-shot command process starts and ends: its arguments, its failures, its exit.

* :func:`read_argv` -- the one hand-written argument reader.  argparse costs ~4-5 ms (it imports
  shutil, gettext and locale) of a process OOD starts for every poll and login and kubectl for every
  command, so the entry points read what their callers always pass here and leave anything else
  (help, a typo) to argparse.
* :func:`run_guarded` -- every failure becomes one line on stderr and an exit code.
* :func:`exit_now` -- flush and leave without the interpreter's teardown.
"""

import os
import sys
from typing import Callable, Collection, Dict, List, NoReturn, Optional, Sequence, Tuple

from ood_k8s.core.errors import OodK8sError, UsageError


def read_argv(argv: Sequence[str], options: Optional[Collection[str]] = None, flags: Collection[str] = (),
              positionals: bool = True) -> Tuple[Dict[str, str], List[str]]:
    """``({name: value}, positionals)`` from ``--name=value``, ``--name value`` and ``--flag`` arguments.

    Names are given and returned without their ``--``; a flag's value is ``""``; the last of a
    repeated option wins (as with argparse).  With ``options=None`` every ``--name`` takes a value,
    even one starting with '-'.  With ``options`` named, anything else is refused -- an unknown
    option, a flag given a value, a value that looks like an option (argparse would read it as
    one), a positional unless ``positionals`` -- so a caller can hand those argv to argparse.
    Raises :class:`UsageError` saying what it could not read.
    """
    values: Dict[str, str] = {}
    rest: List[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("--"):
            if not positionals:
                raise UsageError(f"unexpected argument '{arg}'")
            rest.append(arg)
            continue
        name, eq, value = arg[2:].partition("=")
        if name in flags:
            if eq:
                raise UsageError(f"option --{name} takes no value")
            values[name] = ""
            continue
        if options is not None and name not in options:
            raise UsageError(f"unknown option --{name}")
        if not eq:
            if i >= len(argv) or (options is not None and argv[i].startswith("-")):
                raise UsageError(f"option --{name} needs a value")
            value = argv[i]
            i += 1
        values[name] = value
    return values, rest


def run_guarded(prog: str, fn: Callable[[], Optional[int]]) -> int:
    """Run a command's body; turn every failure into one line on stderr and an exit code.

    Users (OOD shows stderr on the page) never see a traceback: an unexpected exception becomes an
    'internal error' line (exit 70) unless ``$OOD_K8S_DEBUG`` is set.
    """
    try:
        return int(fn() or 0)
    except OodK8sError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if os.environ.get("OOD_K8S_DEBUG"):
            raise
        print(f"{prog}: internal error ({type(exc).__name__}); please report it to your administrator "
              "(OOD_K8S_DEBUG=1 shows the details)", file=sys.stderr)
        return 70


def exit_now(code: int) -> NoReturn:
    """End a one-shot command process at once: flush its output, skip the interpreter's teardown.

    OOD starts ``ood-k8s-psij`` for every status poll and the hook at every login, and kubectl starts
    the credential plugin for every command; tearing down the ~150 modules they load (freeing each
    module's objects) costs such a process 7-15 ms on a 2-core portal, more than its API requests.
    Only for processes with nothing left to finish: no threads, no temporary files, no buffering
    logging handlers -- their files are closed, their locks go with the process.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 120  # what Python exits with when it cannot flush stdout
    os._exit(code)
