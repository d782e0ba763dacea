"""``guanxi audit verify``: check the audit log's HMAC chain and report the first broken line.

The key is ``GUANXI_AUDIT_KEY`` (the one the service wrote the log with); without arguments every
part file under ``$GUANXI_HOME/audit`` is checked. Exit code 0 when every part is intact, 1 when one
is broken (a changed byte, a deleted or inserted line, a cut tail), 2 when there is no key or a
path does not exist (without arguments: ``$GUANXI_HOME/audit``, and the message names the home).
When every part breaks at its first line, the key is likely not the service's, and the command
says so; when some do beside intact ones, they were likely written with another key (the one
before a rotation, or a ``guanxi serve --dev`` run's: without ``GUANXI_AUDIT_KEY`` each makes its
own), and it names them and how to verify them with that key.

``--keys``: each line of the log names the key of its request by ``key_fingerprint``
(:func:`serving.audit.key_fingerprint`, keyed by the audit key); the option first prints the
fingerprint of each key of ``GUANXI_API_KEYS`` with its role, never a key, so an auditor holding the
audit key matches lines to keys (for a key dropped since, or the key before an audit key's
rotation, run it with those in the environment).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from features.contracts import counted
from serving.audit import key_fingerprint, verify_log
from serving.settings import Role, get_settings, parse_api_keys

__all__ = ["verify_command"]


def _print_keys(console: Console, key: bytes) -> None:
    """Print each API key's fingerprint, as the audit log's lines name it (never the key)."""
    keys = get_settings().keys
    if not keys:
        Console(stderr=True).print(
            "[red]GUANXI_API_KEYS is not set[/red]: --keys prints the fingerprints of its keys "
            "(key:role, comma-separated), as the service has them"
        )
        raise typer.Exit(2)
    console.print("key  role      key_fingerprint  (key: its item's number in GUANXI_API_KEYS)")
    for number, api_key, role in _numbered(keys):
        console.print(f"{number:<4} {role.name:<9} {key_fingerprint(key, api_key)}")


def _numbered(keys: dict[str, Role]) -> list[tuple[int, str, Role]]:
    """Return each key with its item's number in ``GUANXI_API_KEYS``, as the service counts items.

    The service's errors name an item by its position, empty items counted
    (:func:`serving.settings.parse_api_keys`): in ``"a:scorer,,b:admin"`` ``b`` is item 3, and so
    its line says 3 here. Keys not read from the environment are numbered in their order.
    """
    spec = next((v for k, v in os.environ.items() if k.upper() == "GUANXI_API_KEYS"), "")
    items = enumerate((parse_api_keys(item) for item in spec.split(",")), start=1)
    numbered = [(n, api_key, role) for n, item in items for api_key, role in item.items()]
    if {api_key: role for _, api_key, role in numbered} != keys:
        return [(n, api_key, role) for n, (api_key, role) in enumerate(keys.items(), start=1)]
    return numbered


def verify_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="PATH",
            help="Part files or directories, one or more (default: $GUANXI_HOME/audit).",
        ),
    ] = None,
    keys: Annotated[
        bool,
        typer.Option(
            "--keys",
            help="First print the key_fingerprint of each key of GUANXI_API_KEYS (never a key), "
            "to tell whose key each line's request came with.",
        ),
    ] = False,
) -> None:
    """Verify the audit log's chain: report each part file and its first broken line."""
    # one line per part, however long its path: a line wrapped at the terminal's width put the
    # reason of a BROKEN part on a line of its own, which a grep for BROKEN or the path lost
    console = Console(highlight=False, soft_wrap=True)
    settings = get_settings()
    key = settings.audit_key.get_secret_value().encode()
    if not key:
        Console(stderr=True).print("[red]GUANXI_AUDIT_KEY is not set[/red]: it is the chain's key")
        raise typer.Exit(2)
    if keys:
        _print_keys(console, key)
    missing = [path for path in paths or [] if not path.exists()]
    if missing:  # was a FileNotFoundError traceback
        Console(stderr=True, highlight=False).print(
            f"[red]no such file or folder:[/red] {escape(', '.join(map(str, missing)))}: give "
            "part files (part-*.jsonl) or the folders holding them"
        )
        raise typer.Exit(2)
    folder = settings.home / "audit"
    if not paths and not folder.is_dir():  # was a FileNotFoundError traceback
        Console(stderr=True, highlight=False).print(
            f"[red]no audit log at {escape(str(folder))}[/red]: GUANXI_HOME is "
            f"{escape(str(settings.home))}; set it to the service's home (`export "
            "GUANXI_HOME=...`), or give the part files or their folder"
        )
        raise typer.Exit(2)
    results = verify_log(paths or [folder], key)
    if not results:
        where = ", ".join(map(str, paths or [folder]))
        console.print(f"no audit part files (part-*.jsonl) in {escape(where)}")
    broken = 0
    for part, lines, problem in results:
        if problem is None:
            console.print(f"ok      {escape(str(part))} ({counted(lines, 'lines')})")
        else:
            broken += 1
            console.print(
                f"[red]BROKEN[/red]  {escape(str(part))} line {problem.line}: {problem.reason}"
            )
    if broken:
        console.print(f"{broken} of {len(results)} part files broken")
        first = [
            part for part, _, p in results if p is not None and p.line == 1 and "mac" in p.reason
        ]
        if len(first) == len(results):
            console.print(
                "every part breaks at its first line: GUANXI_AUDIT_KEY is likely not the key "
                "the service wrote the log with"
            )
        elif first:  # beside other parts: a key rotated since, or `serve --dev` runs' own keys
            console.print(
                f"{len(first)} of them {'breaks' if len(first) == 1 else 'break'} at the first "
                "line: likely written with another GUANXI_AUDIT_KEY (the key before a rotation, "
                "or a `guanxi serve --dev` run's, which makes its own and prints it); verify "
                f"{'it' if len(first) == 1 else 'them'} with that key, naming "
                f"{'it' if len(first) == 1 else 'them'} (GUANXI_AUDIT_KEY=... guanxi audit verify "
                f"PATH ...): {escape(', '.join(part.name for part in first))}"
            )
        raise typer.Exit(1)
