"""An agreement that lists a language the console has no pages in: pk-ir with Pashto (`ps`) added.

Every codebook text and office title of a language table must be given in every language of the
agreement, so each gets a `ps` one: STAND-DOWN in Pashto (`STAND_DOWN`), the others marked Pashto.
agreements/pk-ir.toml itself is left as it is.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PERSIAN_STAND_DOWN = 'fa = "به نیروهای ما در {place} دستور توقف عملیات داده شده است."'
STAND_DOWN = "په {place} کې زموږ ځواکونو ته د عملیاتو د درولو امر شوی دی."
PASHTO_MARK = "پښتو: "


def pashto_agreement(directory: Path) -> Path:
    """Write pk-ir.toml with `ps` among its languages, and a `ps` text beside every `fa` one; return its path."""
    text = (ROOT / "agreements" / "pk-ir.toml").read_text(encoding="utf-8")
    listed = 'languages = ["en", "ur", "fa"]'
    assert text.count(listed) == 1 and text.count(PERSIAN_STAND_DOWN) == 1
    lines: list[str] = []
    for line in text.replace(listed, 'languages = ["en", "ur", "fa", "ps"]').splitlines():
        lines.append(line)
        if line == PERSIAN_STAND_DOWN:
            lines.append(f'ps = "{STAND_DOWN}"')
        elif line.startswith('fa = "'):
            lines.append('ps = "' + PASHTO_MARK + line.removeprefix('fa = "'))
    path = directory / "pk-ir-ps.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
