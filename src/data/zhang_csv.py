"""Reading, cleaning and tokenising the Zhang et al. (2015) text-classification CSV files.

The format (AG News, DBpedia, Yelp, Yahoo Answers, Amazon): no header, every field quoted, quotes
inside a field doubled (``""``), the label first and counted from 1, then one to three text fields
(``"label","title","text"``; Yelp ``"label","text"``; Yahoo ``"label","title","content","answer"``).
Line breaks inside a field are written as a literal backslash-n (``\\n``); AG News also has bare
backslashes where its crawler dropped a line break, and HTML-escaped characters (`` #36;`` = ``$``).
"""

from __future__ import annotations

import csv
import html
import logging
import re
import sys
from pathlib import Path
from typing import Iterator

from src.utils.errors import AutoAttendError

log = logging.getLogger("src.data")

# Long reviews exceed csv's default 128 KiB field limit only in broken files, but never fail on them.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

# Words (letters/digits/underscore), English clitics split off as PTB and GloVe do ("do n't",
# "it 's"), and every other non-space character as its own token.
TOKEN_RE = re.compile(r"\w+(?=n't\b)|n't\b|'(?:s|re|ve|ll|d|m)\b|\w+|[^\w\s]", re.IGNORECASE)
_NUMERIC_ENTITY = re.compile(r"(?<![&\w])#(\d{1,6});")


def _numeric_entity(match: re.Match) -> str:
    """A bare ``#NNN;`` decoded as HTML decodes ``&#NNN;``: 128-159 are Windows-1252 (``#151;`` is an
    em dash, not the control character U+0097); a code that is no character (a surrogate, 0, past
    U+10FFFF) becomes a space, never a lone surrogate that Arrow cannot store."""
    char = html.unescape(f"&#{match.group(1)};")
    return " " if char == "\ufffd" else char


def clean_field(text: str) -> str:
    """Undo the escapes of the Zhang CSVs: literal ``\\n`` and stray backslashes become spaces,
    ``\\"`` a quote, ``#36;`` / ``&amp;``-style entities their character."""
    if "\\" in text:
        text = text.replace("\\n", " ").replace('\\"', '"').replace("\\", " ")
    if "#" in text:
        text = _NUMERIC_ENTITY.sub(_numeric_entity, text)
    if "&" in text:
        text = html.unescape(text)
    return text


def join_fields(fields: list[str]) -> str:
    """Title, body (and answer) joined with a space, as Zhang et al. do; each field cleaned."""
    return " ".join(clean_field(f) for f in fields)


def tokenize(text: str, lowercase: bool = False) -> list[str]:
    """Word tokens of ``text`` (see ``TOKEN_RE``); lower-cased when ``lowercase``."""
    return TOKEN_RE.findall(text.lower() if lowercase else text)


def _decoded_lines(path: Path) -> Iterator[str]:
    """The file's lines as text; undecodable bytes raise an error naming the physical line."""
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            try:
                # utf-8-sig on the first line: a byte-order mark (as Excel writes one) is not part of the label
                yield raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise AutoAttendError(
                    f"{path}, line {lineno}: bytes not valid UTF-8 at byte {err.start} of the line "
                    f"({raw[err.start:err.start + 4]!r}); expected a UTF-8 CSV file"
                ) from None


def separator_hint(row: list[str]) -> str:
    """A note for a record read as one field holding tabs or semicolons: another separator than commas;
    or as a label field that does (``1\\tgood``: a comma in the text split the row)."""
    if len(row) == 1 or (row and re.match(r"\s*-?\d+\s*[\t;]", row[0])):
        for sep, name in (("\t", "tabs (TSV)"), (";", "semicolons")):
            if sep in row[0]:
                return f" (its fields look separated by {name}; the files must be comma-separated)"
    return ""


def malformed_csv(path: Path, row_no: int, line_num: int, err: csv.Error) -> AutoAttendError:
    """One line for what :mod:`csv` could not read at record ``row_no`` (physical line ``line_num``)."""
    if "new-line character seen in unquoted field" in str(err):  # csv's advice (newline='') is for the code
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)
        what = ("lines ended by a carriage return alone, as classic Mac files are); expected LF or CRLF line endings"
                if b"\n" not in head else "a carriage return inside an unquoted field); expected such a field quoted")
        return AutoAttendError(f"{path}, row {row_no} (line {line_num}): malformed CSV ({what}")
    return AutoAttendError(f"{path}, row {row_no} (line {line_num}): malformed CSV ({err}); "
                           f"expected quoted fields with doubled inner quotes")


def _blank(row: list[str]) -> bool:
    """A line with nothing but whitespace (an editor's spaces or tab), which the tree reader and ``src.predict
    --file`` skip too: no record."""
    return not row or (len(row) == 1 and not row[0].strip())


def count_fields(path: Path) -> int:
    """Number of fields in the first record of ``path`` (label included)."""
    reader = csv.reader(_decoded_lines(path), strict=True)
    try:
        for row in reader:
            if not _blank(row):  # blank lines are no records
                if len(row) < 2:
                    raise AutoAttendError(f"{path}, row 1: found {len(row)} field; expected a label and at least "
                                          f"one text field{separator_hint(row)}")
                return len(row)
    except csv.Error as err:  # read_rows says the same of any later record
        raise malformed_csv(path, 1, reader.line_num, err) from None
    raise AutoAttendError(f"{path}: the file is empty; expected CSV rows \"label\",\"text field\",...")


def read_rows(path: Path, num_fields: int, num_classes: int, label_base: int = 1,
              header: bool = False) -> Iterator[dict]:
    """Validated records of one CSV file: ``{"label": int in 0..num_classes-1, "text": str}``.

    ``num_fields`` counts the label. Any malformed record raises one-line ``AutoAttendError``
    naming the file, the record (row) number and the physical line, and what was expected.
    """
    expected = f"{num_fields} fields (label, then {num_fields - 1} text field{'s' if num_fields > 2 else ''})"
    lo, hi = label_base, label_base + num_classes - 1
    reader = csv.reader(_decoded_lines(path), strict=True)
    row_no = 0
    try:
        for row in reader:
            if _blank(row):  # a blank line (one at the end of a file is common) is no record
                continue
            row_no += 1
            if header and row_no == 1:
                if row and row[0].strip().lstrip("-").isdigit():  # a header names its columns
                    log.warning("%s: task.header=true skips its first row, which reads as data (label %s): "
                                "the file may have no header", path, row[0][:20])
                continue
            where = f"{path}, row {row_no} (line {reader.line_num})"
            if len(row) != num_fields:
                raise AutoAttendError(f"{where}: found {len(row)} fields, expected {expected}"
                                      f"{separator_hint(row)}")
            try:
                label = int(row[0])
            except ValueError:
                # A header is only ever the first row of a file read without one; past it (or with
                # task.header=true) a word there is a class name, which the files must give as a number.
                # a tab- or semicolon-separated row whose text holds a comma: its label field is "1\tgood"
                separated = separator_hint(row)[2:-1]
                hint = ("an empty label: every row needs its class number" if not row[0].strip() else
                        separated if separated else
                        "a header row? set task.header=true; or, if every label is a class name, write each as "
                        "its number, task.label_names names them" if row_no == 1 and not header else
                        "labels are class numbers; write each class name as its number, "
                        "task.label_names names them")
                raise AutoAttendError(
                    f"{where}: label {row[0][:40]!r} is not an integer; expected {lo}..{hi} ({hint})"
                ) from None
            if not lo <= label <= hi:
                # one below the smallest: files that count their classes from there (0, as many do)
                base = f"; labels counted from {label}? set task.label_base={label}" if label == lo - 1 >= 0 else ""
                raise AutoAttendError(f"{where}: label {label} outside {lo}..{hi} (num_classes={num_classes}{base})")
            yield {"label": label - label_base, "text": join_fields(row[1:])}
    except csv.Error as err:
        raise malformed_csv(path, row_no + 1, reader.line_num, err) from None
    if row_no - int(header) <= 0:
        raise AutoAttendError(f"{path}: the file is empty (no data rows); expected CSV rows of {expected}")
