"""Which landed files are new since the last sensor tick: a cursor that cannot skip an object.

A plain "LastModified > watermark" cursor loses objects that share the watermark's timestamp but
become visible after the tick that advanced it (S3 timestamps have one-second resolution; a
multipart upload is stamped when it starts and listed when it completes). So the cursor keeps the
watermark *and* the etag of every object modified within `grace` of it; an object is new when it is
younger than that window's start and its key and etag are not remembered. The window bounds the
cursor's size however many objects the landing zone holds; the listing itself is complete
(paginated), so no object is missed because of how many there are.
"""

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field

from resources.landing.local import LandedFile

DEFAULT_GRACE = dt.timedelta(hours=24)
MAX_RUN_KEY = 200


@dataclass(frozen=True)
class ArrivalCursor:
    watermark: dt.datetime | None = None
    # key -> etag of the objects modified in [watermark - grace, watermark]
    recent: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> "ArrivalCursor":
        if not text:
            return cls()
        document = json.loads(text)
        watermark = document.get("watermark")
        return cls(
            dt.datetime.fromisoformat(watermark) if watermark else None, dict(document.get("recent", {}))
        )

    def serialize(self) -> str:
        watermark = self.watermark.isoformat() if self.watermark else None
        return json.dumps(
            {"watermark": watermark, "recent": self.recent}, sort_keys=True, separators=(",", ":")
        )

    def advance(
        self, files: list[LandedFile], grace: dt.timedelta = DEFAULT_GRACE
    ) -> tuple[list[LandedFile], "ArrivalCursor"]:
        """The files not seen before (a changed etag counts as new) and the cursor that remembers them."""
        horizon = self.watermark - grace if self.watermark else None
        new = [
            file
            for file in files
            if self.recent.get(file.key) != file.checksum
            and (horizon is None or file.last_modified is None or file.last_modified >= horizon)
        ]
        stamps = [file.last_modified for file in files if file.last_modified is not None]
        watermark = max([*stamps, *([self.watermark] if self.watermark else [])], default=None)
        keep_from = watermark - grace if watermark else None
        recent = {
            file.key: file.checksum
            for file in files
            if keep_from is None or file.last_modified is None or file.last_modified >= keep_from
        }
        return new, ArrivalCursor(watermark, recent)


def run_key(files: list[LandedFile]) -> str:
    """key@etag of the files a run loads: the same objects never trigger twice, a changed one does."""
    text = "|".join(sorted(f"{file.key}@{file.checksum}" for file in files))
    if len(text) <= MAX_RUN_KEY:
        return text
    return f"{files[0].key}+{len(files) - 1}@{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def batch_id(files: list[LandedFile]) -> str:
    """A stable id for a set of files: the event id of the e-mail about them."""
    return hashlib.sha256(
        "|".join(sorted(f"{file.key}@{file.checksum}" for file in files)).encode()
    ).hexdigest()[:32]
