"""``ood-k8s completion bash|zsh``: a shell completion script made from the parser itself, so it
never lists a command or option that does not exist."""

from __future__ import annotations

import argparse
import sys

_BASH = """# ood-k8s completion for bash: source <(ood-k8s completion bash)
_ood_k8s() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" key="${{COMP_WORDS[1]}}"
    [[ $COMP_CWORD -ge 3 && "${{COMP_WORDS[2]}}" != -* ]] && key="${{COMP_WORDS[1]}} ${{COMP_WORDS[2]}}"
    local words
    case "$COMP_CWORD:$key" in
        1:*) words="{top}" ;;
{cases}
        *) words="" ;;
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F _ood_k8s ood-k8s
"""

_ZSH_PRELUDE = "# ood-k8s completion for zsh: source <(ood-k8s completion zsh)\nautoload -U +X bashcompinit && " \
               "bashcompinit\n"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("completion", help="print a shell completion script (bash or zsh)",
                       description="Enable with: source <(ood-k8s completion bash)  (zsh: ... completion zsh)")
    p.add_argument("shell", choices=("bash", "zsh"))
    p.set_defaults(handler=_completion)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [o for a in parser._actions for o in a.option_strings if o.startswith("--")]


def words(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """``{"": top-level words, "user": its verbs and options, "user setup": its options, ...}``."""
    out = {"": [*_subparsers(parser), *_options(parser)]}
    for name, cmd in _subparsers(parser).items():
        verbs = _subparsers(cmd)
        out[name] = [*verbs, *_options(cmd)]
        for verb, vp in verbs.items():
            out[f"{name} {verb}"] = _options(vp)
    return out


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    table = words(parser)
    cases = []
    for key, ws in table.items():
        if key:
            # A command with verbs completes them second; options complete at any depth after.
            depth = 2 if " " not in key and _subparsers(_subparsers(parser)[key]) else "*"
            cases.append(f'        {depth}:"{key}") words="{" ".join(ws)}" ;;')
    text = _BASH.format(top=" ".join(table[""]), cases="\n".join(cases))
    return (_ZSH_PRELUDE + text) if shell == "zsh" else text


def _completion(args: argparse.Namespace) -> int:
    from ood_k8s.cli import build_parser

    sys.stdout.write(script(args.shell, build_parser()))
    return 0
