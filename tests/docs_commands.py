"""The code of the documentation pages, read as a reader would copy it: every fenced block of
docs/**/*.md, shell commands with their backslash continuations joined, `#` comments removed, the
leading `VAR=value` assignments and `nice` taken off (and `$VAR` expanded), console blocks split
into commands and the output shown after them. tests/test_docs.py runs what it finds."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
ASSIGNMENT = re.compile(r"^([A-Z_][A-Z0-9_]*)=(\S*)$")


@dataclass
class Block:
    page: str
    line: int
    language: str
    text: str


@dataclass
class Command:
    page: str
    line: int
    words: list[str]  # the command itself, after the assignments and `nice`
    env: dict[str, str] = field(default_factory=dict)  # the assignments before it (PYTHONPATH=., D=...)
    output: str | None = None  # what a console block shows after it

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {shlex.join(self.words)}"


def blocks(docs: Path, *more: Path) -> list[Block]:
    """The fenced blocks of every page under `docs` and of the `more` files (README.md)."""
    found = []
    for page in [*sorted(docs.rglob("*.md")), *more]:
        text = page.read_text()
        for match in FENCE.finditer(text):
            found.append(Block(page.name if page in more else str(page.relative_to(docs)),
                               text.count("\n", 0, match.start()) + 1,
                               match.group(1), match.group(2)))
    return found


def _without_comment(line: str) -> str:
    """`line` up to a `#` that starts a comment (outside quotes, after a space or at the start)."""
    quote = None
    for i, char in enumerate(line):
        if char in "'\"" and quote in (None, char):
            quote = None if quote else char
        elif char == "#" and quote is None and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def shell_commands(block: Block) -> list[Command]:
    """The commands of a bash block; `NAME=value` lines alone set variables for the lines after."""
    variables: dict[str, str] = {}
    commands, pending, start = [], "", 0
    for number, raw in enumerate(block.text.splitlines(), start=block.line + 1):
        line = _without_comment(raw).rstrip()
        start = start or number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = (pending + line).strip(), ""
        if line:
            words = [re.sub(r"\$(\w+)", lambda m: variables.get(m.group(1), m.group(0)), w) for w in shlex.split(line)]
            env = {}
            while words and ASSIGNMENT.match(words[0]):
                name, value = ASSIGNMENT.match(words.pop(0)).groups()  # type: ignore[union-attr]
                env[name] = value
            if not words:
                variables.update(env)
            else:
                while words[0] == "nice":
                    words = words[3:] if words[1:2] == ["-n"] else words[1:]
                commands.append(Command(block.page, start, words, env))
        start = 0
    return commands


def console_commands(block: Block) -> list[Command]:
    """`$ command` lines of a console block, each with the lines shown after it as its output."""
    commands: list[Command] = []
    for number, line in enumerate(block.text.splitlines(), start=block.line + 1):
        if line.startswith("$ "):
            commands.append(Command(block.page, number, shlex.split(line[2:]), output=""))
        elif commands:
            commands[-1].output = (commands[-1].output or "") + line + "\n"
    return commands
