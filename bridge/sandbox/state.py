"""Keep the sandbox's users, learning resources, progress and call log.

Data lives in SQLite through the standard library: in memory by default, or
in a file that survives restarts (seeded only when the file is new). One
connection is shared by the server's threads behind a lock; the sandbox is a
test double, so one writer at a time is plenty.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from bridge.sandbox import seed

TEXT_FIELDS = ("fname", "lname", "username", "usercode", "email", "description")
RECORD_FIELDS = {
    "country_id": "country",
    "city_id": "city",
    "company_id": "company",
    "department_id": "department",
    "location_id": "location",
}
SEARCH_FIELDS = (
    "fname",
    "lname",
    "username",
    "usercode",
    "email",
    "company_id",
    "department_id",
    "country_id",
    "city_id",
    "location_id",
    "group_id",
)
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_TEXT_LENGTH = 255
MAX_CALLS_KEPT = 200_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL, id INTEGER NOT NULL, name TEXT NOT NULL,
    PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY, username TEXT NOT NULL, usercode TEXT,
    employee_id TEXT, email TEXT, fname TEXT, lname TEXT, description TEXT,
    country_id INTEGER, city_id INTEGER, company_id INTEGER,
    department_id INTEGER, location_id INTEGER, job_id INTEGER);
CREATE TABLE IF NOT EXISTS user_groups (
    user_id INTEGER NOT NULL, group_id INTEGER NOT NULL,
    PRIMARY KEY (user_id, group_id));
CREATE TABLE IF NOT EXISTS learning (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS assignments (
    learning_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
    PRIMARY KEY (learning_id, user_id));
CREATE TABLE IF NOT EXISTS progress (
    learning_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
    status TEXT NOT NULL, score INTEGER, updated_at TEXT NOT NULL,
    PRIMARY KEY (learning_id, user_id));
"""
RESET_STATEMENTS = (
    "DELETE FROM records",
    "DELETE FROM users",
    "DELETE FROM user_groups",
    "DELETE FROM learning",
    "DELETE FROM assignments",
    "DELETE FROM progress",
)
INSERT_USER = """
INSERT INTO users (username, usercode, email, fname, lname, description)
VALUES (:username, :usercode, :email, :fname, :lname, :description)
"""
UPDATE_USER = """
UPDATE users SET username = :username, usercode = :usercode, email = :email,
    fname = :fname, lname = :lname, description = :description,
    country_id = :country_id, city_id = :city_id, company_id = :company_id,
    department_id = :department_id, location_id = :location_id
WHERE id = :id
"""


class SandboxNotFoundError(LookupError):
    """A user or learning resource the request names does not exist."""


class SandboxInputError(ValueError):
    """A request value is invalid; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def utc_now() -> str:
    """Return the current UTC time as an ISO 8601 string."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class SandboxStore:
    """Hold the sandbox's Open ELMS data in SQLite, safe across threads."""

    def __init__(self, path: str | None = None) -> None:
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path or ":memory:", check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.executescript(SCHEMA)
        with self._lock, self._db:
            seeded = self._db.execute("SELECT 1 FROM meta WHERE key = 'seeded'")
            if seeded.fetchone() is None:
                self._seed()

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def reset(self) -> None:
        """Drop every row and load the seed data again."""
        with self._lock, self._db:
            for statement in RESET_STATEMENTS:
                self._db.execute(statement)
            self._seed()

    def list_users(self) -> list[dict[str, Any]]:
        """Return every user record, by id."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM users ORDER BY id").fetchall()
            return [self._user_record(row) for row in rows]

    def get_user(self, user_id: int) -> dict[str, Any]:
        """Return one user record.

        Raises:
            SandboxNotFoundError: no user has this id.
        """
        with self._lock:
            return self._user_record(self._user_row(user_id))

    def search_users(self, criteria: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        """Return the users matching every criterion (exact match, AND).

        Raises:
            SandboxInputError: a field is not searchable or an id is not a number.
        """
        tests = [
            _criterion(name, value)
            for name, wanted in criteria.items()
            for value in wanted
        ]
        users = self.list_users()
        return [user for user in users if all(test(user) for test in tests)]

    def create_user(self, form: Mapping[str, str]) -> int:
        """Add a user from form fields and return the new id.

        Raises:
            SandboxInputError: username missing or taken, or email malformed.
        """
        values = _text_values(form)
        if not values.get("username"):
            raise SandboxInputError("username", "username is required")

        with self._lock, self._db:
            self._check_username_free(values["username"], None)
            params = {name: values.get(name) for name in TEXT_FIELDS}
            cursor = self._db.execute(INSERT_USER, params)
            return int(cursor.lastrowid or 0)

    def update_user(self, user_id: int, form: Mapping[str, str]) -> dict[str, Any]:
        """Change the given fields of a user and return the updated record.

        Raises:
            SandboxNotFoundError: no user has this id.
            SandboxInputError: a value is invalid or names an unknown record.
        """
        with self._lock, self._db:
            merged: dict[str, Any] = dict(self._user_row(user_id))
            values = _text_values(form)
            if "username" in values:
                self._require_username(values["username"], user_id)
            merged.update(values)
            for name, kind in RECORD_FIELDS.items():
                if name in form:
                    merged[name] = self._record_id(kind, name, form[name])

            self._db.execute(UPDATE_USER, merged)
            return self._user_record(self._user_row(user_id))

    def list_learning(self) -> list[dict[str, Any]]:
        """Return every learning resource as ``{id, name, type}``, by id."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM learning ORDER BY id").fetchall()
            return [dict(row) for row in rows]

    def get_learning(self, learning_id: int) -> dict[str, Any]:
        """Return one learning resource.

        Raises:
            SandboxNotFoundError: no learning resource has this id.
        """
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM learning WHERE id = ?", (learning_id,)
            ).fetchone()
        if row is None:
            raise SandboxNotFoundError(f"learning {learning_id} not found")
        return dict(row)

    def get_progress(self, learning_id: int, user_id: int) -> tuple[str, int | None]:
        """Return (status, score) for a pair; no record reads as not attempted.

        Raises:
            SandboxNotFoundError: the user or the learning resource is unknown.
        """
        with self._lock:
            self._check_pair(learning_id, user_id)
            return self._progress(learning_id, user_id)

    def start(self, learning_id: int, user_id: int) -> tuple[str, int | None]:
        """Mark a pair in progress unless it is completed; return the progress."""
        with self._lock, self._db:
            self._check_pair(learning_id, user_id)
            status, score = self._progress(learning_id, user_id)
            if status == "completed":
                return status, score
            return self._write_progress(learning_id, user_id, "in progress", None)

    def complete(
        self, learning_id: int, user_id: int, score: int | None
    ) -> tuple[str, int | None]:
        """Mark a pair completed with the given score; return the progress."""
        with self._lock, self._db:
            self._check_pair(learning_id, user_id)
            return self._write_progress(learning_id, user_id, "completed", score)

    def set_progress(
        self, learning_id: int, user_id: int, status: str, score: int | None
    ) -> tuple[str, int | None]:
        """Set a pair's progress as given, even backwards; return it."""
        with self._lock, self._db:
            self._check_pair(learning_id, user_id)
            return self._write_progress(learning_id, user_id, status, score)

    def all_progress(self) -> list[dict[str, Any]]:
        """Return every progress record, ordered by learning then user."""
        with self._lock:
            rows = self._db.execute(
                "SELECT learning_id, user_id, status, score, updated_at"
                " FROM progress ORDER BY learning_id, user_id"
            ).fetchall()
        return [dict(row) for row in rows]

    def _seed(self) -> None:
        """Insert the seed data; the caller holds the lock and a transaction."""
        for kind, records in seed.RECORDS.items():
            self._db.executemany(
                "INSERT INTO records (kind, id, name) VALUES (?, ?, ?)",
                [(kind, record_id, name) for record_id, name in records],
            )

        for user_id, user in enumerate(seed.USERS, start=1):
            self._seed_user(user_id, user)

        self._db.executemany("INSERT INTO learning VALUES (?, ?, ?)", seed.LEARNING)
        self._db.executemany(
            "INSERT INTO assignments VALUES (?, ?)",
            [(lid, uid) for lid, uid, _, _ in seed.PROGRESS] + seed.ASSIGNMENTS,
        )
        self._db.executemany(
            "INSERT INTO progress VALUES (?, ?, ?, ?, ?)",
            [(*row, seed.SEED_TIME) for row in seed.PROGRESS],
        )
        self._db.execute(
            "INSERT OR REPLACE INTO meta VALUES ('seeded', ?)", (utc_now(),)
        )

    def _seed_user(self, user_id: int, user: tuple) -> None:
        """Insert one seed user and their groups."""
        username, email, fname, lname, profile, groups = user
        code = f"UC{user_id:04d}"
        employee_id = f"E{1000 + user_id}"
        description = f"{fname} {lname}, seeded learner"
        self._db.execute(
            "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (user_id, username, code, employee_id, email, fname, lname, description)
            + seed.PROFILES[profile],
        )
        self._db.executemany(
            "INSERT INTO user_groups VALUES (?, ?)",
            [(user_id, group_id) for group_id in groups],
        )

    def _user_row(self, user_id: int) -> sqlite3.Row:
        """Return a user's row or raise SandboxNotFoundError."""
        row = self._db.execute("SELECT * FROM users WHERE id = ?", (user_id,))
        found = row.fetchone()
        if found is None:
            raise SandboxNotFoundError(f"user {user_id} not found")
        return found

    def _user_record(self, row: sqlite3.Row) -> dict[str, Any]:
        """Return the API record of a user row, with its related records."""
        user_id = row["id"]
        groups = self._db.execute(
            "SELECT r.id, r.name FROM user_groups g JOIN records r"
            " ON r.kind = 'group' AND r.id = g.group_id"
            " WHERE g.user_id = ? ORDER BY r.id",
            (user_id,),
        ).fetchall()
        learning = self._db.execute(
            "SELECT l.id, l.name FROM assignments a JOIN learning l"
            " ON l.id = a.learning_id WHERE a.user_id = ? ORDER BY l.id",
            (user_id,),
        ).fetchall()

        record = {name: row[name] for name in ("id", "employee_id", *TEXT_FIELDS)}
        for kind in ("country", "city", "company", "department", "location", "job"):
            record[kind] = self._record(kind, row[f"{kind}_id"])
        record["groups"] = [dict(group) for group in groups]
        record["learning"] = [dict(item) for item in learning]
        return record

    def _record(self, kind: str, record_id: int | None) -> dict[str, Any] | None:
        """Return ``{id, name}`` of a reference record, or None."""
        if record_id is None:
            return None
        row = self._db.execute(
            "SELECT id, name FROM records WHERE kind = ? AND id = ?", (kind, record_id)
        ).fetchone()
        return dict(row) if row else None

    def _record_id(self, kind: str, field: str, raw: str) -> int | None:
        """Return the id a form field names, checking the record exists."""
        if raw.strip() == "":
            return None
        record_id = _parse_int(field, raw)
        if self._record(kind, record_id) is None:
            raise SandboxInputError(field, f"{field}: no {kind} has id {record_id}")
        return record_id

    def _require_username(self, username: str, user_id: int | None) -> None:
        """Reject an empty or taken username."""
        if not username:
            raise SandboxInputError("username", "username must not be empty")
        self._check_username_free(username, user_id)

    def _check_username_free(self, username: str, user_id: int | None) -> None:
        """Reject a username another user already has (case-insensitive)."""
        row = self._db.execute(
            "SELECT id FROM users WHERE lower(username) = lower(?) AND id IS NOT ?",
            (username, user_id),
        ).fetchone()
        if row is not None:
            raise SandboxInputError("username", f"username {username!r} is taken")

    def _check_pair(self, learning_id: int, user_id: int) -> None:
        """Raise SandboxNotFoundError unless both the user and learning exist."""
        self._user_row(user_id)
        self.get_learning(learning_id)

    def _progress(self, learning_id: int, user_id: int) -> tuple[str, int | None]:
        """Return the stored progress of a pair, or not attempted."""
        row = self._db.execute(
            "SELECT status, score FROM progress WHERE learning_id = ? AND user_id = ?",
            (learning_id, user_id),
        ).fetchone()
        return (row["status"], row["score"]) if row else ("not attempted", None)

    def _write_progress(
        self, learning_id: int, user_id: int, status: str, score: int | None
    ) -> tuple[str, int | None]:
        """Store a pair's progress, assign the learning, and return it."""
        self._db.execute(
            "INSERT OR REPLACE INTO progress VALUES (?, ?, ?, ?, ?)",
            (learning_id, user_id, status, score, utc_now()),
        )
        self._db.execute(
            "INSERT OR IGNORE INTO assignments VALUES (?, ?)", (learning_id, user_id)
        )
        return status, score


class CallLog:
    """Record every documented call, in order, safe across threads.

    Indexes are absolute: when the oldest entries are dropped to bound memory,
    ``since`` still counts from the first call ever recorded.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._dropped = 0

    def record(self, entry: dict[str, Any]) -> None:
        """Append one call."""
        with self._lock:
            self._entries.append(entry)
            if len(self._entries) > MAX_CALLS_KEPT:
                excess = len(self._entries) - MAX_CALLS_KEPT // 2
                del self._entries[:excess]
                self._dropped += excess

    def entries(self, since: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Return the calls from index ``since`` on, and the next index."""
        with self._lock:
            start = max(since - self._dropped, 0)
            return list(self._entries[start:]), self._dropped + len(self._entries)

    def clear(self) -> None:
        """Forget every call; indexes start again from zero."""
        with self._lock:
            self._entries.clear()
            self._dropped = 0


def _text_values(form: Mapping[str, str]) -> dict[str, str]:
    """Return the text fields present in a form, checked and trimmed."""
    values = {}
    for name in TEXT_FIELDS:
        if name not in form:
            continue
        value = form[name].strip()
        if len(value) > MAX_TEXT_LENGTH:
            raise SandboxInputError(name, f"{name} is longer than {MAX_TEXT_LENGTH}")
        values[name] = value

    email = values.get("email")
    if email and not EMAIL_PATTERN.fullmatch(email):
        raise SandboxInputError("email", f"email {email!r} is not a valid address")
    return values


def _criterion(name: str, value: str) -> Callable[[dict[str, Any]], bool]:
    """Return a test of a user record for one search field and value.

    Raises:
        SandboxInputError: the field is not searchable or an id is not a number.
    """
    if name not in SEARCH_FIELDS:
        raise SandboxInputError(name, f"unknown search field: {name}")

    if name == "group_id":
        group_id = _parse_int(name, value)
        return lambda user: any(group["id"] == group_id for group in user["groups"])
    if name.endswith("_id"):
        record_id, kind = _parse_int(name, value), name.removesuffix("_id")
        return lambda user: (user[kind] or {}).get("id") == record_id
    if name == "email":
        email = value.casefold()
        return lambda user: (user["email"] or "").casefold() == email
    return lambda user: user[name] == value


def _parse_int(field: str, raw: str) -> int:
    """Return raw as an integer, or raise SandboxInputError naming the field."""
    try:
        return int(raw.strip())
    except ValueError:
        raise SandboxInputError(field, f"{field} must be an integer") from None
