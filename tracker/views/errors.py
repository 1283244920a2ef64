"""Error pages in Vietnamese, and JSON errors under /api/."""
from __future__ import annotations

from typing import Any

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ..access import api_error

MESSAGES = {
    400: "Yêu cầu không hợp lệ.",
    401: "Cần đăng nhập để tiếp tục.",
    403: "Bạn không có quyền truy cập trang này.",
    404: "Không tìm thấy trang hoặc dữ liệu được yêu cầu.",
    405: "Phương thức không được hỗ trợ.",
    413: "Tệp tải lên quá lớn. Dung lượng tối đa là 10 MB.",
    415: "Định dạng tệp không được hỗ trợ.",
    422: "Dữ liệu không hợp lệ.",
    429: "Bạn đã thử quá nhiều lần. Vui lòng đợi một phút rồi thử lại.",
    500: "Đã xảy ra lỗi hệ thống. Dữ liệu đã lưu không bị ảnh hưởng; vui lòng thử lại sau.",
}
CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 413: "too_large", 415: "unsupported", 422: "invalid",
         429: "too_many_requests", 500: "server_error"}


def render_error(status: int, message: str | None = None, code: str | None = None) -> Any:
    message = message or MESSAGES.get(status, MESSAGES[400])
    if request.path.startswith("/api/"):
        return api_error(status, code or CODES.get(status, "error"), message)
    return render_template("errors/error.html", status=status, message=message), status


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError) -> Any:
        return render_error(400, "Phiên làm việc đã hết hạn hoặc biểu mẫu không hợp lệ. Vui lòng tải lại trang và thử lại.",
                            "csrf")

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Any:
        status = error.code or 500
        # abort(404, "…") carries our own Vietnamese text; Werkzeug's English defaults do not reach users.
        custom = error.description if error.description != type(error).description else None
        return render_error(status, custom)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Any:
        app.logger.exception("unexpected error")
        from ..extensions import db

        db.session.rollback()
        return render_error(500)
