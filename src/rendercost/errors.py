"""The one exception tree of rendercost.

Every error a client or an operator can cause is a ``RenderCostError`` with a stable machine-readable
``code``, a human ``message`` and, where one field is at fault, the ``param`` that names it. The HTTP
layer maps ``http_status`` to the response in one place; the CLI prints ``message`` on one line and
exits 2. Lower-layer exceptions (SQLAlchemy, diffusers, httpx) are translated at the boundary with
``raise ... from exc``.

    RenderCostError                      (500, internal_error)
    ├── InvalidRequest                   (400, invalid_request)   bad field value
    │   ├── UnknownModel                 (400, unknown_model)
    │   ├── UnknownPreset                (400, unknown_preset)
    │   ├── UnknownLora                  (400, unknown_lora)
    │   ├── PresetUnavailable            (400, preset_unavailable) speed LoRA not configured
    │   └── PromptTooLong                (400, prompt_too_long)
    ├── AuthenticationFailed             (401, invalid_api_key)
    ├── BudgetExceeded                   (402, budget_exceeded)
    ├── PermissionDenied                 (403, permission_denied)  needs an admin key
    ├── NotFound                         (404, not_found)
    ├── Conflict                         (409, conflict)           e.g. illegal job state change
    ├── Gone                             (410, artifact_expired)   its retention ran out; the file is deleted
    ├── PayloadTooLarge                  (413, payload_too_large)
    ├── RateLimited                      (429, rate_limit_exceeded) carries retry_after
    ├── ModelLoadFailed                  (503, model_unavailable)  weights missing or unreadable
    ├── RenderFailed                     (500, render_failed)     every attempt of the job failed
    ├── RenderTimeout                    (504, timeout)           a synchronous wait ran out; the job goes on
    └── QueueFull                        (503, queue_full)         carries retry_after
"""

from __future__ import annotations


class RenderCostError(Exception):
    """Base of every rendercost error; ``code`` is stable, ``message`` is for people."""

    http_status: int = 500
    code: str = "internal_error"
    error_type: str = "server_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str | None]:
        """The body of the one error shape: ``{"error": to_dict()}``."""
        return {
            "code": self.code,
            "message": self.message,
            "param": self.param,
            "type": self.error_type,
        }


class InvalidRequest(RenderCostError):
    """A field has a value rendercost cannot serve."""

    http_status = 400
    code = "invalid_request"
    error_type = "invalid_request_error"


class UnknownModel(InvalidRequest):
    code = "unknown_model"


class UnknownPreset(InvalidRequest):
    code = "unknown_preset"


class UnknownLora(InvalidRequest):
    code = "unknown_lora"


class PresetUnavailable(InvalidRequest):
    """The preset needs a speed LoRA that is not configured for the model."""

    code = "preset_unavailable"


class PromptTooLong(InvalidRequest):
    code = "prompt_too_long"


class AuthenticationFailed(RenderCostError):
    http_status = 401
    code = "invalid_api_key"
    error_type = "authentication_error"


class BudgetExceeded(RenderCostError):
    http_status = 402
    code = "budget_exceeded"
    error_type = "budget_error"


class PermissionDenied(RenderCostError):
    http_status = 403
    code = "permission_denied"
    error_type = "permission_error"


class NotFound(RenderCostError):
    http_status = 404
    code = "not_found"
    error_type = "not_found_error"


class Conflict(RenderCostError):
    http_status = 409
    code = "conflict"
    error_type = "conflict_error"


class Gone(RenderCostError):
    """The thing existed and was deleted on purpose (an image whose retention ran out)."""

    http_status = 410
    code = "artifact_expired"
    error_type = "not_found_error"


class PayloadTooLarge(RenderCostError):
    http_status = 413
    code = "payload_too_large"
    error_type = "invalid_request_error"


class _RetryableRefusal(RenderCostError):
    """A refusal the client may retry after ``retry_after`` seconds."""

    def __init__(
        self, message: str, *, retry_after: float, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, param=param, code=code)
        self.retry_after = retry_after


class RateLimited(_RetryableRefusal):
    http_status = 429
    code = "rate_limit_exceeded"
    error_type = "rate_limit_error"


class QueueFull(_RetryableRefusal):
    http_status = 503
    code = "queue_full"
    error_type = "server_error"


class DatabaseUnavailable(_RetryableRefusal):
    """The database could not be reached or was too busy (a restart, a failover, a lock); retry soon."""

    http_status = 503
    code = "database_unavailable"
    error_type = "server_error"


class ModelLoadFailed(RenderCostError):
    """A configured model cannot be loaded (folder missing, hub id not in the offline cache)."""

    http_status = 503
    code = "model_unavailable"
    error_type = "server_error"


class RenderTimeout(RenderCostError):
    """A synchronous request waited longer than its limit; the job itself goes on."""

    http_status = 504
    code = "timeout"
    error_type = "timeout_error"


class RenderFailed(RenderCostError):
    """The job ran and failed on the server (every attempt)."""

    http_status = 500
    code = "render_failed"
    error_type = "server_error"
