"""What a stored message can be: its kind and its status, each with one Vietnamese label.

The lowest floor that needs them: the models store them, ``reminder_rules`` decides the scheduled
kinds, the outbox moves the statuses, the mail log shows both.
"""
from __future__ import annotations

from .labels import LabelledEnum


class MessageKind(LabelledEnum):
    """Every kind of message the tracker sends; the stored ``OutboundMessage.kind`` is the value."""

    DEADLINE_APPROACHING = "deadline_approaching", "Nhắc hạn nộp"
    OVERDUE = "overdue", "Nhắc quá hạn"
    RECEIPT = "receipt", "Xác nhận đã nhận"
    RETURNED = "returned", "Trả lại để chỉnh sửa"
    VISIT_APPROACHING = "visit_approaching", "Sắp đến lịch kiểm tra"
    DIGEST = "digest", "Bản tổng hợp"
    INTAKE_REPLY = "intake_reply", "Trả lời thư gửi báo cáo"
    MANUAL_REMINDER = "manual_reminder", "Nhắc nộp (cán bộ Sở gửi)"
    COMMENT = "comment", "Ý kiến trao đổi"


# Every kind that asks a unit to report: "last reminded" on the chase list and in the status API.
REMINDER_KINDS = (MessageKind.DEADLINE_APPROACHING, MessageKind.OVERDUE, MessageKind.MANUAL_REMINDER)


class MessageStatus(LabelledEnum):
    """Where a stored message is in its life; ``sending`` means claimed by a running sender."""

    PENDING = "pending", "Chờ gửi"
    SENDING = "sending", "Đang gửi"
    SENT = "sent", "Đã gửi"
    FAILED = "failed", "Không gửi được"

    @property
    def tone(self) -> str:
        """Return the badge colour class."""
        return _TONES[self]

    def shown_label(self, to_outbox: bool) -> str:
        """Return the mail log's word for this status; ``to_outbox``: the .eml outbox took the message."""
        return OUTBOX_LABEL if to_outbox and self is MessageStatus.SENT else self.label


_TONES = {MessageStatus.PENDING: "info", MessageStatus.SENDING: "info", MessageStatus.SENT: "ok",
          MessageStatus.FAILED: "bad"}

# A message "sent" with no SMTP server configured was written to the .eml outbox, not sent anywhere.
OUTBOX_LABEL = "Đã ghi vào hộp thư đi"

