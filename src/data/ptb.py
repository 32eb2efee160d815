"""Penn-Treebank-style sentiment trees, as in the Stanford Sentiment Treebank.

Each line of an SST tree file is one sentence, e.g. ``(3 (2 It) (4 (2 's) (4 good)))``: every node
carries a label 0-4 and every leaf one token. Tokens are kept exactly as written (the official
files already escape brackets as ``-LRB-`` / ``-RRB-``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from src.utils.errors import AutoAttendError

# Only ASCII whitespace separates tokens: SST has a word with a non-breaking space ("8\xa01\/2").
_TOKEN_RE = re.compile(r"\(|\)|[^ \t\r\n\f\v()]+")


@dataclass
class Tree:
    """One node: ``label`` and either a ``word`` (leaf) or ``children`` (internal node)."""

    label: int
    word: str | None = None
    children: list["Tree"] = field(default_factory=list)

    def leaves(self) -> list[str]:
        """Tokens of the subtree, left to right."""
        return [node.word for node in self.nodes() if node.word is not None]

    def nodes(self) -> Iterator["Tree"]:
        """Every node of the subtree in pre-order (root first); iterative, so deep trees are fine."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))


def parse_tree(line: str) -> Tree:
    """Parse one PTB tree. Raises ``AutoAttendError`` saying what is wrong (without a location;
    ``read_tree_file`` adds the file and line)."""
    tokens = _TOKEN_RE.findall(line)
    if not tokens:
        raise AutoAttendError("empty tree: expected '(label ...)'")
    stack: list[Tree] = []
    root: Tree | None = None
    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        if root is not None:
            raise AutoAttendError(f"unexpected text {tok!r} after the end of the tree")
        if tok == "(":
            if i + 1 >= n or tokens[i + 1] in ("(", ")"):
                raise AutoAttendError("expected an integer label after '('")
            try:
                label = int(tokens[i + 1])
            except ValueError:
                raise AutoAttendError(f"expected an integer label after '(', got {tokens[i + 1]!r}") from None
            if stack and stack[-1].word is not None:
                raise AutoAttendError(f"leaf ({stack[-1].label} {stack[-1].word}) also has a subtree")
            node = Tree(label=label)
            if stack:
                stack[-1].children.append(node)
            stack.append(node)
            i += 2
            continue
        if tok == ")":
            if not stack:
                raise AutoAttendError("unbalanced ')': more closing than opening brackets")
            node = stack.pop()
            if node.word is None and not node.children:
                raise AutoAttendError(f"node with label {node.label} has neither a word nor children")
            if not stack:
                root = node
            i += 1
            continue
        # A bare token: the word of the innermost open node.
        if not stack:
            raise AutoAttendError(f"token {tok!r} outside any bracket; expected '(label ...)'")
        top = stack[-1]
        if top.word is not None or top.children:
            raise AutoAttendError(f"node with label {top.label} has more than one word or mixes words and subtrees")
        top.word = tok
        i += 1
    if root is None:
        raise AutoAttendError(f"unbalanced '(': {len(stack)} bracket(s) left open at the end of the line")
    return root


def tree_spans(tree: Tree) -> list[tuple[int, int, int]]:
    """``(start, end, label)`` of every node in pre-order (root first, once): the node covers
    leaves ``[start, end)`` of ``tree.leaves()``."""
    spans: list[tuple[int, int, int]] = []
    # Iterative pre-order with a post-visit marker so the end of each span is known.
    stack: list[tuple[Tree, int]] = [(tree, -1)]
    cursor = 0
    while stack:
        node, slot = stack.pop()
        if slot >= 0:
            start, _, label = spans[slot]
            spans[slot] = (start, cursor, label)
            continue
        if node.word is not None:
            spans.append((cursor, cursor + 1, node.label))
            cursor += 1
            continue
        spans.append((cursor, cursor, node.label))
        stack.append((node, len(spans) - 1))
        stack.extend((child, -1) for child in reversed(node.children))
    return spans


def read_tree_file(path: str | Path, num_labels: int | None = None) -> list[Tree]:
    """Parse every non-blank line of a tree file.

    ``num_labels``: when given, every node label must lie in ``[0, num_labels)``.
    A malformed line raises ``AutoAttendError`` naming the file and the 1-based line number.
    """
    path = Path(path)
    trees: list[Tree] = []
    data = path.read_bytes()
    try:
        # lines as text mode reads them (\n, \r\n or \r), not str.splitlines's (which also splits at \x85)
        # utf-8-sig: a byte-order mark (as editors on Windows write) was read as a token outside any bracket
        lines = data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    except UnicodeDecodeError as err:
        # err.object: without a byte-order mark; its line ends counted as the lines above are split
        line_of = err.object[:err.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n").count(b"\n") + 1
        raise AutoAttendError(f"{path}, line {line_of}: not UTF-8 text (byte 0x{err.object[err.start]:02x}); the SST "
                              "trees are UTF-8") from None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            tree = parse_tree(line)
        except AutoAttendError as err:
            raise AutoAttendError(f"{path}, line {lineno}: malformed PTB tree: {err}") from None
        if num_labels is not None:
            for node in tree.nodes():
                if not 0 <= node.label < num_labels:
                    raise AutoAttendError(
                        f"{path}, line {lineno}: label {node.label} out of range; expected 0..{num_labels - 1}"
                    )
        trees.append(tree)
    return trees
