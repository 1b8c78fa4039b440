"""What ``dupes --move-to/--link/--delete`` does to the extra copies of each group, and ``undo``.

Each group keeps one file (chosen by ``--keep``) that is never touched; the others are moved,
replaced by a link to the kept file, or deleted. Without ``--apply`` nothing changes: the plan
is printed. With it, every action is first written to a journal (JSON lines, flushed and
synced before the action runs), so ``imgscout undo JOURNAL`` can reverse all of them, even
after a crash half-way (an entry whose action never happened is skipped).

Deleted files and the copies a link replaces are not destroyed: they are moved into the trash
folder next to the journal (``JOURNAL.trash``), which ``undo`` restores from. The space comes
back when that folder is removed, once the result has been checked.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from imgscout._cli_report import FileFacts, Group, best_first, text_path

KEEP_POLICIES = ("largest-resolution", "largest-file", "oldest", "newest", "reference")


class ActionError(Exception):
    """A plan that cannot be carried out as asked (printed as one line, exit status 2)."""


@dataclass(frozen=True)
class Action:
    kind: str  # "move", "link" or "delete"
    path: str
    kept: str
    #: For a move: where the file goes.
    target: str | None = None
    #: For a link: "hard" or "symlink".
    link: str | None = None


def kept_member(group: Group, policy: str) -> int:
    """The position of the file a group keeps."""
    facts = group.facts or [FileFacts()] * len(group.paths)
    members = range(len(group.paths))
    if policy == "reference":
        if not group.reference:
            raise ActionError("--keep reference needs --against REF")
        refs = [k for k in members if group.reference[k]]
        return min(refs, key=lambda k: best_first(group.paths[k], facts[k]))
    if policy == "largest-resolution":
        return min(members, key=lambda k: best_first(group.paths[k], facts[k]))
    if policy == "largest-file":
        return min(members, key=lambda k: (-facts[k].size, -facts[k].pixels, group.paths[k]))
    if policy == "oldest":
        return min(members, key=lambda k: (facts[k].mtime_ns, group.paths[k]))
    if policy == "newest":
        return min(members, key=lambda k: (-facts[k].mtime_ns, group.paths[k]))
    raise ActionError(f"unknown --keep policy {policy!r}")


def plan_actions(
    groups: Sequence[Group],
    keep: str,
    kind: str,
    move_to: str | None = None,
    link: str = "hard",
) -> list[Action]:
    """One action per extra copy. With ``--against`` the reference files are never acted on."""
    actions: list[Action] = []
    taken: set[str] = set()
    for group in groups:
        kept = kept_member(group, keep)
        for k, path in enumerate(group.paths):
            if k == kept or (group.reference and group.reference[k]):
                continue
            target = None
            if kind == "move":
                assert move_to is not None
                target = _free_name(move_to, os.path.basename(path), taken)
                taken.add(target)
            actions.append(
                Action(kind, path, group.paths[kept], target, link if kind == "link" else None)
            )
    return actions


def _free_name(folder: str, name: str, taken: set[str]) -> str:
    stem, ext = os.path.splitext(name)
    candidate = os.path.join(folder, name)
    number = 2
    while candidate in taken or os.path.lexists(candidate):
        candidate = os.path.join(folder, f"{stem} ({number}){ext}")
        number += 1
    return os.path.abspath(candidate)


def describe(action: Action, done: bool) -> str:
    verb = {"move": "moved", "link": "linked", "delete": "deleted"}[action.kind]
    if not done:
        verb = {"move": "would move", "link": "would link", "delete": "would delete"}[action.kind]
    path = text_path(action.path)
    if action.kind == "move":
        return f"{verb} {path} -> {text_path(action.target or '')}"
    if action.kind == "link":
        return f"{verb} {path} -> {text_path(action.kept)} ({action.link} link)"
    return f"{verb} {path} (kept {text_path(action.kept)})"


def trash_folder(journal: str) -> str:
    return journal + ".trash"


def apply_actions(actions: Sequence[Action], journal: str) -> tuple[int, list[str]]:
    """Carries out ``actions``, journaling each first. Returns how many were done and one
    message per action that could not be (the run goes on with the others)."""
    done, problems = 0, []
    trash = trash_folder(journal)
    with open(journal, "a", encoding="utf-8") as log:
        for number, action in enumerate(actions):
            try:
                entry = _prepare(action, trash, number)
            except OSError as error:
                problems.append(f"{text_path(action.path)}: {error.strerror or error}")
                continue
            log.write(json.dumps(entry, ensure_ascii=True) + "\n")
            log.flush()
            os.fsync(log.fileno())
            try:
                _perform(action, entry)
            except OSError as error:
                problems.append(f"{text_path(action.path)}: {error.strerror or error}")
                continue
            done += 1
    return done, problems


def _prepare(action: Action, trash: str, number: int) -> dict[str, str]:
    path = os.path.abspath(action.path)
    kept = os.path.abspath(action.kept)
    if os.path.samefile(path, kept):  # never act on the kept file, whatever its name
        raise OSError(0, "is the kept file")
    entry = {"action": action.kind, "path": path, "kept": kept}
    if action.kind == "move":
        entry["to"] = os.path.abspath(action.target or "")
    else:
        os.makedirs(trash, exist_ok=True)
        # Unique across runs appending to one journal: a number, and a random part.
        name = f"{number:06d}-{uuid.uuid4().hex[:8]}-{os.path.basename(path)}"
        entry["trash"] = os.path.join(os.path.abspath(trash), name)
        if action.kind == "link":
            entry["link"] = action.link or "hard"
    return entry


def _perform(action: Action, entry: dict[str, str]) -> None:
    path = entry["path"]
    if action.kind == "move":
        target = entry["to"]
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.move(path, target)  # copies and removes across file systems
        return
    trash = entry["trash"]
    if action.kind == "delete":
        shutil.move(path, trash)
        return
    kept = entry["kept"]
    staged = path + ".imgscout-link"
    if entry["link"] == "hard":
        os.link(kept, staged)  # fails across file systems before anything changed
    else:
        os.symlink(kept, staged)
    try:
        shutil.move(path, trash)
    except OSError:
        os.unlink(staged)
        raise
    os.replace(staged, path)


def undo(journal: str) -> tuple[int, int, list[str]]:
    """Reverses a journal, last action first. Returns (restored, skipped, problems)."""
    try:
        with open(journal, encoding="utf-8") as log:
            lines = log.read().splitlines()
    except OSError as error:
        raise ActionError(f"cannot read journal {journal}: {error.strerror or error}") from error
    entries = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError as error:
            if number == len(lines):  # the last line of an interrupted run
                continue
            raise ActionError(f"journal {journal} line {number} is not JSON: {error}") from error
    restored, skipped, problems = 0, 0, []
    for entry in reversed(entries):
        try:
            if _reverse(entry):
                restored += 1
            else:
                skipped += 1
        except (OSError, KeyError) as error:
            problems.append(f"{text_path(str(entry.get('path')))}: {error}")
    return restored, skipped, problems


def _reverse(entry: dict[str, str]) -> bool:
    path = entry["path"]
    if entry["action"] == "move":
        target = entry["to"]
        if os.path.lexists(path) or not os.path.lexists(target):
            return False  # never happened, or already undone
        os.makedirs(os.path.dirname(path), exist_ok=True)
        shutil.move(target, path)
        return True
    trash = entry["trash"]
    if not os.path.lexists(trash):
        return False
    if entry["action"] == "link":
        if os.path.lexists(path):
            os.unlink(path)  # the link that replaced the copy
    elif os.path.lexists(path):
        return False
    shutil.move(trash, path)
    return True
