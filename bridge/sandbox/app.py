"""Serve the Open ELMS stand-in: the documented API plus an admin API.

The documented API lives under ``/<site>/backend/``. Every call there passes
through faults first, then the token check, then routing, and is recorded in
the call log whatever its outcome. The admin API under ``/_sandbox/`` has no
authentication: the sandbox only ever listens on loopback.
"""

from __future__ import annotations

import hmac
import io
import json
import logging
import math
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    jsonify,
    request,
    url_for,
)
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import wrap_file

from bridge.sandbox.faults import (
    STATUSES,
    FaultAnswer,
    FaultInjector,
    FaultSettings,
    ResponseShapes,
    render_progress,
    render_user_id,
    validate_shapes_update,
)
from bridge.sandbox.seed import build_scorm_zip
from bridge.sandbox.state import (
    CallLog,
    SandboxInputError,
    SandboxNotFoundError,
    SandboxStore,
    utc_now,
)

logger = logging.getLogger(__name__)

# A public default: the sandbox is a loopback test double, not a secret store.
DEFAULT_TOKEN = "sandbox-token"  # noqa: S105
DEFAULT_SITE = "demo"
ADMIN_PREFIX = "/_sandbox"
EXTENSION_KEY = "openelms_sandbox"
SITE_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
SCORM_TYPE = "e-learning"

api = Blueprint("api", __name__)
admin = Blueprint("admin", __name__)


@dataclass
class SandboxConfig:
    """Choose the token, site, storage, start-up faults and RNG seed."""

    token: str = DEFAULT_TOKEN
    site: str = DEFAULT_SITE
    db_path: str | None = None
    faults: FaultSettings = field(default_factory=FaultSettings)
    seed_random: int | None = None


class Sandbox:
    """Hold one sandbox's live parts: data, faults, call log and shapes."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.prefix = f"/{config.site}/backend"
        self.store = SandboxStore(config.db_path)
        self.faults = FaultInjector(config.faults, seed=config.seed_random)
        self.calls = CallLog()
        self.shapes = ResponseShapes()
        self.lock = threading.Lock()

    def reset(self) -> None:
        """Reseed the data and clear faults, calls and shapes."""
        self.store.reset()
        self.faults.clear()
        self.calls.clear()
        with self.lock:
            self.shapes = ResponseShapes()


def create_app(config: SandboxConfig | None = None) -> Flask:
    """Build the sandbox Flask app.

    Raises:
        ValueError: the site name is not a plain URL path segment.
    """
    config = config or SandboxConfig()
    if not SITE_PATTERN.fullmatch(config.site):
        raise ValueError(f"site {config.site!r} must be letters, digits, . _ -")

    app = Flask(__name__)
    app.url_map.strict_slashes = False
    app.extensions[EXTENSION_KEY] = Sandbox(config)

    app.before_request(_before_call)
    app.after_request(_after_call)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(SandboxNotFoundError, _not_found)
    app.register_error_handler(SandboxInputError, _bad_input)
    app.register_error_handler(OverflowError, _id_out_of_range)

    app.register_blueprint(api, url_prefix=f"/{config.site}/backend")
    app.register_blueprint(admin, url_prefix=ADMIN_PREFIX)
    return app


def get_sandbox(app: Flask | None = None) -> Sandbox:
    """Return the sandbox behind an app, by default the current one."""
    return (app or current_app).extensions[EXTENSION_KEY]


def _is_backend_call() -> bool:
    """Tell whether the current request is a documented API call."""
    prefix = get_sandbox().prefix
    return request.path == prefix or request.path.startswith(prefix + "/")


def _before_call() -> Response | None:
    """Apply faults, then the token check, to a documented call."""
    if not _is_backend_call():
        return None

    g.call_started = time.perf_counter()
    sandbox = get_sandbox()
    delay = sandbox.faults.latency_seconds()
    if delay:
        time.sleep(delay)

    answer = sandbox.faults.plan()
    if answer is not None:
        return _fault_response(answer)

    if not _token_matches(sandbox.config.token):
        return _error(403, "forbidden", "missing or wrong API token")
    return None


def _after_call(response: Response) -> Response:
    """Record a documented call in the call log."""
    started = g.pop("call_started", None)
    if started is None:
        return response

    sandbox = get_sandbox()
    path = request.path[len(sandbox.prefix) :].lstrip("/")
    duration_ms = round((time.perf_counter() - started) * 1000, 2)
    sandbox.calls.record(
        {
            "method": request.method,
            "path": path,
            "query": request.query_string.decode("latin-1"),
            "status": response.status_code,
            "time": utc_now(),
            "duration_ms": duration_ms,
        }
    )
    logger.debug("call %s %s answered %s", request.method, path, response.status)
    return response


def _token_matches(expected: str) -> bool:
    """Compare the ``Authorization: Basic <token>`` header in constant time."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


def _fault_response(answer: FaultAnswer) -> Response:
    """Build the response an injected fault answers with."""
    if answer.body is None:
        response = _error(answer.status, "fault", answer.message)
    else:
        response = Response(answer.body, answer.status, mimetype=_body_type(answer))

    if answer.retry_after is not None:
        response.headers["Retry-After"] = str(answer.retry_after)
    return response


def _body_type(answer: FaultAnswer) -> str:
    """Return the content type of a scripted body: JSON when it parses."""
    try:
        json.loads(answer.body or "")
    except ValueError:
        return "text/plain"
    return "application/json"


def _error(status: int, error: str, message: str, **extra: Any) -> Response:
    """Return a JSON error response."""
    response = jsonify({"error": error, "message": message, **extra})
    response.status_code = status
    return response


def _http_error(exc: HTTPException) -> Response:
    """Answer routing and HTTP errors in JSON; 405 on the API becomes 501."""
    status = exc.code or 500
    if status == 405 and _is_backend_call():
        message = f"{request.method} is not implemented for this resource"
        return _error(501, "not implemented", message)
    return _error(status, exc.name.lower(), exc.description or exc.name)


def _not_found(exc: SandboxNotFoundError) -> Response:
    """Answer 404 for an unknown user or learning resource."""
    return _error(404, "not found", str(exc))


def _id_out_of_range(exc: OverflowError) -> Response:
    """Answer 404 for an id too large to be stored: no such record can exist."""
    return _error(404, "not found", "no record has an id that large")


def _bad_input(exc: SandboxInputError) -> Response:
    """Answer 400 naming the invalid field."""
    return _error(400, "bad request", str(exc), field=exc.field)


def _form_fields() -> Mapping[str, str]:
    """Return the request's form fields, refusing JSON and other bodies."""
    has_body = bool(request.content_length) or request.is_json
    if has_body and request.mimetype not in FORM_TYPES:
        raise SandboxInputError("body", "send form data, not JSON or other bodies")
    return request.form


def _parse_score(raw: str) -> int:
    """Return a score path segment as an integer from 0 to 100."""
    try:
        value = float(raw)
    except ValueError:
        raise SandboxInputError("score", f"score {raw!r} is not a number") from None

    if not math.isfinite(value) or not 0 <= value <= 100:
        raise SandboxInputError("score", f"score {raw!r} must be from 0 to 100")
    if not value.is_integer():
        raise SandboxInputError("score", f"score {raw!r} must be a whole number")
    return int(value)


def _learning_record(learning: dict[str, Any]) -> dict[str, Any]:
    """Add the download link to a SCORM learning resource."""
    record = dict(learning)
    if record["type"] == SCORM_TYPE:
        link = url_for("api.download", learning_id=record["id"], _external=True)
        record["download_link"] = link
    return record


def _progress_body(progress: tuple[str, int | None]) -> Response:
    """Return progress in the configured shape."""
    status, score = progress
    return jsonify(render_progress(get_sandbox().shapes.progress_shape, status, score))


@api.get("/users/", provide_automatic_options=False)
def list_users() -> Response:
    """List users, or search them when the query string has fields."""
    store = get_sandbox().store
    if not request.args:
        return jsonify(store.list_users())
    criteria = {name: request.args.getlist(name) for name in request.args}
    return jsonify(store.search_users(criteria))


@api.get("/users/<int:user_id>", provide_automatic_options=False)
def show_user(user_id: int) -> Response:
    """Return one user."""
    return jsonify(get_sandbox().store.get_user(user_id))


@api.post("/users/", provide_automatic_options=False)
def create_user() -> Response:
    """Create a user from form data and return the id in the set shape."""
    sandbox = get_sandbox()
    user_id = sandbox.store.create_user(_form_fields())
    logger.info("user %s created", user_id)
    return jsonify(render_user_id(sandbox.shapes.user_id_shape, user_id))


@api.put("/users/<int:user_id>", provide_automatic_options=False)
def update_user(user_id: int) -> Response:
    """Update a user from form data and return the record."""
    return jsonify(get_sandbox().store.update_user(user_id, _form_fields()))


@api.get("/learning/", provide_automatic_options=False)
def list_learning() -> Response:
    """List learning resources, with download links for SCORM ones."""
    learning = get_sandbox().store.list_learning()
    return jsonify([_learning_record(item) for item in learning])


@api.get("/learning/<int:learning_id>", provide_automatic_options=False)
def show_learning(learning_id: int) -> Response:
    """Return one learning resource."""
    return jsonify(_learning_record(get_sandbox().store.get_learning(learning_id)))


@api.get("/learning/download/<int:learning_id>", provide_automatic_options=False)
def download(learning_id: int) -> Response:
    """Stream the SCORM package of an e-learning resource as a ZIP."""
    learning = get_sandbox().store.get_learning(learning_id)
    if learning["type"] != SCORM_TYPE:
        message = "only e-learning (SCORM) resources can be downloaded"
        raise SandboxInputError("learning_id", message)

    package = build_scorm_zip(learning_id, learning["name"])
    stream = wrap_file(request.environ, io.BytesIO(package))
    response = Response(stream, mimetype="application/zip", direct_passthrough=True)
    response.content_length = len(package)
    disposition = f"attachment; filename=learning-{learning_id}.zip"
    response.headers["Content-Disposition"] = disposition
    return response


@api.get("/learning/<int:learning_id>/<int:user_id>", provide_automatic_options=False)
def show_progress(learning_id: int, user_id: int) -> Response:
    """Return a user's progress on a learning resource."""
    return _progress_body(get_sandbox().store.get_progress(learning_id, user_id))


@api.put(
    "/learning/<int:learning_id>/<int:user_id>/<action>",
    defaults={"score": None},
    provide_automatic_options=False,
)
@api.put(
    "/learning/<int:learning_id>/<int:user_id>/<action>/<score>",
    provide_automatic_options=False,
)
def update_progress(
    learning_id: int, user_id: int, action: str, score: str | None
) -> Response:
    """Start or complete a learning resource for a user.

    The reference uses the score only for ``complete``; a score after
    ``start`` is accepted and ignored.
    """
    store = get_sandbox().store
    if action == "start":
        progress = store.start(learning_id, user_id)
    elif action == "complete":
        value = None if score is None else _parse_score(score)
        progress = store.complete(learning_id, user_id, value)
    else:
        return _error(404, "not found", f"unknown action {action!r}")

    logger.info("progress %s/%s is now %s", learning_id, user_id, progress[0])
    return _progress_body(progress)


def _admin_json() -> Any:
    """Return the admin request's JSON body, or raise a 400."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise SandboxInputError("body", "send a JSON object")
    return body


@admin.get("/faults")
def show_faults() -> Response:
    """Return the fault settings."""
    return jsonify(get_sandbox().faults.snapshot())


@admin.put("/faults")
def update_faults() -> Response:
    """Apply a partial update of the fault settings."""
    try:
        settings = get_sandbox().faults.update(_admin_json())
    except ValueError as exc:
        return _error(400, "bad request", str(exc))
    return jsonify(settings)


@admin.get("/calls")
def list_calls() -> Response:
    """Return the documented calls received, optionally from an index on."""
    since = request.args.get("since", "0")
    if not since.isdigit():
        return _error(400, "bad request", "since must be a non-negative integer")
    calls, next_index = get_sandbox().calls.entries(int(since))
    return jsonify({"calls": calls, "next": next_index})


@admin.delete("/calls")
def clear_calls() -> Response:
    """Forget the recorded calls."""
    get_sandbox().calls.clear()
    return jsonify({"calls": [], "next": 0})


@admin.get("/state")
def show_state() -> Response:
    """Return every progress record."""
    return jsonify(get_sandbox().store.all_progress())


@admin.put("/progress/<int:learning_id>/<int:user_id>")
def set_progress(learning_id: int, user_id: int) -> Response:
    """Set a progress record directly, as a change made inside Open ELMS."""
    body = _admin_json()
    status, score = body.get("status"), body.get("score")
    if status not in STATUSES:
        return _error(400, "bad request", f"status must be one of {list(STATUSES)}")

    score_ok = score is None or (
        isinstance(score, int) and not isinstance(score, bool) and 0 <= score <= 100
    )
    if not score_ok or (score is not None and status != "completed"):
        message = "score must be null, or an integer 0-100 when completed"
        return _error(400, "bad request", message)

    progress = get_sandbox().store.set_progress(learning_id, user_id, status, score)
    return jsonify({"status": progress[0], "score": progress[1]})


@admin.post("/reset")
def reset() -> Response:
    """Reseed the data and clear faults, calls and shapes."""
    get_sandbox().reset()
    logger.info("sandbox reset to its seed data")
    return jsonify({"reset": True})


@admin.get("/shapes")
def show_shapes() -> Response:
    """Return the response shapes in use."""
    return jsonify(asdict(get_sandbox().shapes))


@admin.put("/shapes")
def update_shapes() -> Response:
    """Change the response shapes."""
    sandbox = get_sandbox()
    try:
        changes = validate_shapes_update(_admin_json())
    except ValueError as exc:
        return _error(400, "bad request", str(exc))

    with sandbox.lock:
        sandbox.shapes = ResponseShapes(**{**asdict(sandbox.shapes), **changes})
    return jsonify(asdict(sandbox.shapes))
