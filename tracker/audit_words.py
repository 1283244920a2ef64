"""Audit events in Vietnamese words for the unit's journal and the admin audit log.

Pure: an event's action, target and detail (plain values) and a code → unit name lookup in; a label
and one sentence out. No codes such as ``upload_refused`` and no raw JSON reach the pages.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ACTION_LABELS: dict[str, str] = {
    "login": "Đăng nhập", "login_failed": "Đăng nhập không thành công", "logout": "Đăng xuất",
    "password_reset_requested": "Yêu cầu đặt lại mật khẩu", "password_reset": "Đặt lại mật khẩu",
    "user_created": "Tạo tài khoản", "user_deactivated": "Khoá tài khoản", "user_reactivated": "Mở khoá tài khoản",
    "token_created": "Tạo mã API", "tokens_revoked": "Thu hồi mã API",
    "upload": "Nộp báo cáo", "upload_refused": "Từ chối tệp tải lên", "version.withdraw": "Rút phiên bản",
    "review.accept": "Chấp nhận báo cáo", "review.return": "Trả lại để chỉnh sửa",
    "reminder.manual": "Gửi thư nhắc", "comment.add": "Gửi ý kiến", "contacts_changed": "Đổi địa chỉ liên hệ",
    "export": "Tải bảng tổng hợp", "plan_copied": "Sao chép kế hoạch", "demo.story": "Tạo dữ liệu mẫu",
    "intake_confirmed": "Xác nhận báo cáo nhận qua email", "intake_rejected": "Từ chối báo cáo nhận qua email",
    "intake_held": "Giữ lại báo cáo nhận qua email", "intake_accepted": "Nhận báo cáo qua email",
    "intake_refused": "Từ chối thư gửi báo cáo", "outlier.verify": "Xác nhận số liệu bất thường",
    "outlier.bounds": "Đổi ngưỡng số liệu bất thường", "download": "Tải tệp",
}
_ROLES = {"admin": "quản trị", "staff": "cán bộ Sở", "unit": "cán bộ đơn vị"}


def action_label(action: str) -> str:
    """Return the Vietnamese name of ``action`` (an unknown one reads "Thao tác khác")."""
    if action in ACTION_LABELS:
        return ACTION_LABELS[action]
    if action.startswith("intake_"):
        return "Thư gửi báo cáo qua email"
    return "Thao tác khác"


def unit_of(target: str, detail: Mapping[str, Any]) -> str:
    """Return the unit code an event is about ('' when none): ``detail.unit`` or "<plan>/<unit>"."""
    if detail.get("unit"):
        return str(detail["unit"])
    return target.split("/", 1)[1] if "/" in target else ""


def describe(action: str, target: str, detail: Mapping[str, Any], unit_names: Mapping[str, str]) -> str:
    """Return one Vietnamese sentence saying what the event did, naming the unit by its name."""
    code = unit_of(target, detail)
    unit = unit_names.get(code, f"đơn vị mã {code}") if code else ""
    parts: list[str] = []
    version = detail.get("version")
    if action == "upload_refused":
        name = detail.get("filename") or "không rõ tên"
        parts.append(f"Tệp «{name}» của {unit} không được nhận" if unit else f"Tệp «{name}» không được nhận")
        if detail.get("reason"):
            parts.append(f"lý do: {detail['reason']}")
    elif action == "upload":
        state = "đầy đủ" if detail.get("complete") else f"{detail.get('errors', 0)} lỗi"
        parts.append(f"Phiên bản {version} của {unit}: {state}, {detail.get('warnings', 0)} cảnh báo")
    elif action in ("review.accept", "review.return", "version.withdraw"):
        parts.append(f"Phiên bản {version} của {unit}")
        if detail.get("reason"):
            parts.append(f"lý do: «{detail['reason']}»")
    elif action == "reminder.manual":
        recipients = ", ".join(detail.get("recipients") or []) or "không có địa chỉ"
        parts.append(f"Nhắc {unit} nộp báo cáo, gửi tới {recipients}")
    elif action == "comment.add":
        parts.append(f"Ý kiến về phiên bản {version} của {unit}")
    elif action == "contacts_changed":
        before = ", ".join(detail.get("before") or []) or "không có"
        after = ", ".join(detail.get("after") or []) or "không có"
        parts.append(f"Địa chỉ liên hệ của {unit or target}: {before} → {after}")
    elif action == "user_created":
        role = _ROLES.get(str(detail.get("role", "")), str(detail.get("role", "")))
        parts.append(f"Tài khoản {target}, vai trò {role}" + (f", {unit}" if unit else ""))
    elif action == "tokens_revoked":
        parts.append(f"Thu hồi {detail.get('count', 0)} mã API của {target}")
    elif action == "export":
        parts.append(f"Kế hoạch {detail.get('plan', target)}" + (f", tệp {detail['filename']}" if detail.get("filename") else ""))
    else:
        if unit:
            parts.append(unit)
        elif target:
            parts.append(target)
        if version:
            parts.append(f"phiên bản {version}")
        if detail.get("reason"):
            parts.append(f"lý do: {detail['reason']}")
        if detail.get("filename") and action != "export":
            parts.append(f"tệp «{detail['filename']}»")
    sentence = "; ".join(p for p in parts if p).rstrip(". ")
    return sentence + "." if sentence else ""
