# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""``ood-k8s-psij``'s first step: a status poll answered by the agent before anything else is imported.

OOD starts one process per session card per refresh.  The interpreter alone costs ~13-16 ms on a
2-core portal; ``typing``, ``json``, ``socket`` or ``re`` would each add 3-8 ms, the site
configuration and NSS more.  So this module imports only modules built into the interpreter
(``_socket``, ``time``) and answers when, and only when, all of this holds:

1. the arguments are exactly a poll: ``get_info.py --id=ID --executor=X``, plus ``--user=NAME`` from
   root (an administrator acting for a user) and ``--config=FILE``;
2. the site configuration names an agent: its *hint* ``<config>.agent`` (:func:`keep_hint`), which
   root leaves beside the configuration whenever it loads it with ``agent.enabled`` (the login hook,
   the agent, ``ood-k8s ood config``), holds the agent's settings and the exact configuration text
   they came from.  A hint whose text is not the file's, or that is not trusted as much as the file
   (a regular file of the file's owner nobody else may write), is not used: no edit is ever missed,
   as with the compiled cache (:mod:`ood_k8s.config.yamlcache`);
3. the agent answers (within ``agent.timeout``) ``ok``, ``found``, with a view no older than
   ``agent.max_age``.

Its body is then the whole output: the same bytes the full path prints through the agent.  The
caller is named by the kernel at the other end of the socket (``SO_PEERCRED``), so nothing here
looks the user up.  Anything else -- other verbs and arguments, no hint, no or a late answer, an
unknown job, a system account -- goes to the full path (:mod:`ood_k8s.ood.psij_shim`) unchanged,
told whether the agent was already asked so a hung agent costs a poll its timeout once.  An ended
session's answer is finished by :func:`ood_k8s.agent.client.finish` (its end note needs the user's
identity, so NSS is asked only then).
"""

import os
import sys

HINT_SUFFIX = ".agent"  # /etc/ood/config/ood_k8s.yml -> /etc/ood/config/ood_k8s.yml.agent
_HINT_VERSION = b"ood-k8s agent hint 1"
_HINT_FIELDS = 5  # version, socket, timeout, max_age, min_uid; then the configuration's text
_MAX_FILE = 4 << 20
MAX_ANSWER = 64 << 20
# Where the full path looks for the configuration (ood_k8s.config.loader.resolve_path; a test pins both).
DEFAULT_CONFIG = "/etc/ood/config/ood_k8s.yml"
CONFIG_ENV = "OOD_K8S_CONFIG"
_OPTIONS = ("id", "executor", "owner", "user", "config")
_OK_HEAD = b'{"ok":true,"age":'


class Hint:
    """The agent's settings as the site configuration sets them."""

    __slots__ = ("max_age", "min_uid", "socket", "timeout")

    def __init__(self, socket: str, timeout: float, max_age: float, min_uid: int) -> None:
        self.socket, self.timeout, self.max_age, self.min_uid = socket, timeout, max_age, min_uid


# --- the request -------------------------------------------------------------------------------------


def poll_request(args: "list[str]") -> "tuple[str, str, str | None] | None":
    """``(job id or "", user or "", --config or None)`` when ``args`` are a plain ``get_info`` poll that
    the full path would read the same way; None for anything else (the full path reads it)."""
    if not args or (os.path.basename(args[0]) != "get_info.py" and args[0] != "info"):
        return None
    opts = {}
    rest = args[1:]
    i = 0
    while i < len(rest):
        name, eq, value = rest[i][2:].partition("=")
        if not rest[i].startswith("--") or name not in _OPTIONS:
            return None  # a positional executor, an unknown option: the full path's reading
        if not eq:
            if i + 1 >= len(rest):
                return None
            i += 1
            value = rest[i]
        opts[name] = value
        i += 1
    job, user = opts.get("id", "").strip(), opts.get("user")
    if not _word(job, empty=True) or (user is not None and not _word(user)):
        return None
    return job, user or "", opts.get("config")


def _word(text: str, empty: bool = False) -> bool:
    """Whether ``text`` can travel as one word of a request line: printable ASCII, no space (the
    agent checks job ids and usernames again)."""
    return (empty or bool(text)) and all("!" <= c <= "~" for c in text)


def request_line(fmt: str, job: str, user: str = "") -> "bytes | None":
    """One request to the agent (:mod:`ood_k8s.agent.server`); None if an argument cannot travel in it."""
    if not _word(job, empty=True) or (user and not _word(user)):
        return None
    return f"{fmt} {job or '-'}{' ' + user if user else ''}\n".encode("ascii")


# --- the hint ----------------------------------------------------------------------------------------


def config_path(explicit: "str | None") -> "str | None":
    """The configuration the full path would read: --config, then $OOD_K8S_CONFIG, then the default."""
    if explicit:
        return explicit
    return os.environ.get(CONFIG_ENV) or (DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) else None)


def _read(path: str, flags: int = 0) -> "tuple[bytes, os.stat_result] | None":
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | flags)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if st.st_size > _MAX_FILE or (st.st_mode & 0o170000) != 0o100000:  # a regular file, not too big
            return None
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks), st
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)


def hint_text(socket: str, timeout: float, max_age: float, min_uid: int, config: bytes) -> "bytes | None":
    """The hint's content for these settings of the configuration ``config`` (None: not writable)."""
    head = [socket, repr(float(timeout)), repr(float(max_age)), str(int(min_uid))]
    if any("\n" in field for field in head):
        return None
    return b"\n".join([_HINT_VERSION, *(f.encode("utf-8") for f in head), config])


def read_hint(path: str) -> "Hint | None":
    """The agent's settings from ``path``'s hint, if it is current and trusted; else None."""
    config = _read(path)
    hint = _read(path + HINT_SUFFIX, os.O_NOFOLLOW)
    if config is None or hint is None:
        return None
    (text, st), (data, hst) = config, hint
    if hst.st_uid != st.st_uid or hst.st_mode & 0o022:
        return None
    fields = data.split(b"\n", _HINT_FIELDS)
    if len(fields) != _HINT_FIELDS + 1 or fields[0] != _HINT_VERSION or fields[_HINT_FIELDS] != text:
        return None
    try:
        return Hint(fields[1].decode("utf-8"), float(fields[2]), float(fields[3]), int(fields[4]))
    except ValueError:
        return None


def keep_hint(path: str, text: str, st: os.stat_result, hint: Hint) -> bool:
    """Leave (or refresh) ``path``'s hint for the polls, when root loads a root-owned configuration
    that enables the agent; True if it was written.  Best effort, like the compiled cache."""
    if os.geteuid() != 0 or st.st_uid != 0:
        return False
    data = hint_text(hint.socket, hint.timeout, hint.max_age, hint.min_uid, text.encode("utf-8"))
    current = _read(path + HINT_SUFFIX, os.O_NOFOLLOW)
    if data is None or (current is not None and current[0] == data):
        return False
    from ood_k8s.core.errors import OodK8sError
    from ood_k8s.core.fsutil import atomic_write

    try:  # never more readable than the configuration it copies
        atomic_write(path + HINT_SUFFIX, data, mode=(st.st_mode & 0o644), gid=st.st_gid)
    except (OSError, OodK8sError):
        return False
    return True


# --- the exchange ------------------------------------------------------------------------------------


def exchange(path: str, line: bytes, timeout: float) -> "bytes | None":
    """Send ``line`` to the agent at ``path``; its whole answer, or None (no agent, refused, too slow,
    too long).  The whole exchange is bounded by ``timeout``."""
    import _socket
    import time

    give_up = time.monotonic() + timeout
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(line)
        chunks = []
        size = 0
        while True:
            left = give_up - time.monotonic()
            if left <= 0:
                return None
            sock.settimeout(left)
            chunk = sock.recv(1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_ANSWER:
                return None
    except OSError:
        return None  # no agent, refused, or gave up waiting (a timeout is an OSError)
    finally:
        sock.close()


def plain_answer(data: bytes) -> "tuple[float, bytes] | None":
    """``(age, body)`` of an answer whose header is exactly ``{"ok":true,"age":A,"found":true}``, read
    without ``json``; None for anything else (a refusal, an unknown job, an ended session)."""
    head, nl, body = data.partition(b"\n")
    if not nl or not head.startswith(_OK_HEAD) or not head.endswith(b',"found":true}'):
        return None
    age = head[len(_OK_HEAD):-len(b',"found":true}')]
    try:
        return float(age), body
    except ValueError:
        return None


# --- the command -------------------------------------------------------------------------------------


def _ask(args: "list[str]") -> "tuple[bytes | None, bytes | None]":
    """``(output, None)`` answered; ``(None, answer)`` for the full path to finish; ``(None, None)``: not
    asked, or no usable answer."""
    poll = poll_request(args)
    if poll is None:
        return None, None
    job, user, explicit = poll
    uid = os.getuid()
    if uid != os.geteuid() or (uid == 0) != bool(user):
        return None, None  # root names a user; a user names nobody (the full path says so)
    path = config_path(explicit)
    hint = read_hint(path) if path else None
    line = request_line("psij", job, user)
    if hint is None or line is None or (uid and uid < hint.min_uid):
        return None, None
    data = exchange(hint.socket, line, hint.timeout)
    if data is None:
        return None, b""
    plain = plain_answer(data)
    if plain is None:
        return None, data
    age, body = plain
    return (body, None) if age <= hint.max_age else (None, b"")


def _write(out: bytes) -> int:
    view = memoryview(out)
    try:
        while view:
            view = view[os.write(1, view):]
    except OSError:
        return 120  # what Python exits with when it cannot flush stdout
    return 0


def cli() -> None:
    """The ``ood-k8s-psij`` command: the agent's answer, else the full path (one process per OOD poll)."""
    args = sys.argv[1:]
    try:
        out, answer = _ask(args)
    except Exception:  # never this module's failure: the full path answers, and reports its own
        out, answer = None, None
    if out is not None:
        os._exit(_write(out))
    from ood_k8s.ood import psij_shim

    psij_shim.cli(args, answer)
